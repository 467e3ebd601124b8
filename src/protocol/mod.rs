//! What both halves speak, and nothing else: the control protocol (commands,
//! answers, events and their codes), the wire frames peers exchange, the
//! QUIC transport set-up, and the game-folder layout rules. It imports
//! nothing from `peer/` or `checker/`, so either can use it without
//! reaching into the other.

pub mod control;
pub mod digest;
pub mod hostile;
pub mod layout;
pub mod transport;
pub mod wire;
