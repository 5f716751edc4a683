"""Stand-in: the tables of a part of the volume service (see /work/notes/volume-contract.md)."""
