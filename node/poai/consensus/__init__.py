"""Consensus: the seal hash, the quiz seal as a py-evm ConsensusAPI, difficulty retarget."""
