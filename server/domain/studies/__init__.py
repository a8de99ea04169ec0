"""Studies: blind storage of sealed instances, envelopes and manifests (ZK-1)."""
