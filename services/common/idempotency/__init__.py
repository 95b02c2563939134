"""Request ids (AIP-155) for mutating RPCs; see `store` for the contract and `run` for
how servicers use it."""
