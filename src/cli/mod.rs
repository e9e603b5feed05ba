//! The `cardswitch` command line.
