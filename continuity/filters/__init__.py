"""Filter stages: each inspects a message and returns findings (see continuity.core.pipeline)."""
