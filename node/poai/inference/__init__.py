"""Text generation with the chain's governed model (the active snapshot of the head's epoch)."""
