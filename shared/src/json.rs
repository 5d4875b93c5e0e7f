//! Strict JSON request bodies: a JSON object that names a field twice is refused.
