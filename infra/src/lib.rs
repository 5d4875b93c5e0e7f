//! The local stack's gateway and the operator tool's commands.
