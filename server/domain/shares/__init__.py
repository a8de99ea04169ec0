"""Shares with people and anonymous links (protocol.md §8, §9, §15)."""
