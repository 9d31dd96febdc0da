// Package doccheck holds tests that keep the documentation honest: every
// SIDEKICK_* variable a service reads is documented where users look.
package doccheck
