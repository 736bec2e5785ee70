"""The PoAI chain: VM subclass (Prague), chain class, genesis, rewards, fork choice, builder."""
