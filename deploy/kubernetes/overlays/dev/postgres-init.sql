-- Runs once, when the dev PostgreSQL initialises its data directory.
-- One login role per service, each owning only its own schema (least
-- privilege, as in production); the services' migrations create the tables.
CREATE ROLE triage LOGIN PASSWORD 'dev-triage';
CREATE ROLE rotation LOGIN PASSWORD 'dev-rotation';
CREATE ROLE notifier LOGIN PASSWORD 'dev-notifier';
CREATE SCHEMA triage AUTHORIZATION triage;
CREATE SCHEMA rotation AUTHORIZATION rotation;
CREATE SCHEMA notifier AUTHORIZATION notifier;
REVOKE ALL ON DATABASE sidekick FROM PUBLIC;
GRANT CONNECT ON DATABASE sidekick TO triage, rotation, notifier;
