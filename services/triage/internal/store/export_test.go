package store

// SearchWith is Search ranking the candidates newest matches of each kind
// first, so that a test can pass the bound with a few conversations.
var SearchWith = search

// SummariseInSQL is the report as PostgreSQL grouped it, the reference
// Summarise must equal.
var SummariseInSQL = summariseInSQL
