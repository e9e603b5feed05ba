//! The Thales payShield host-command codec (see `frame`).
