"""Reading ModelRegistry / DatasetDAO at epoch boundaries (see docs/ARCHITECTURE.md
"Governance"): `contracts` (the genesis contracts asset), `reader` (typed view calls on py-evm
state), `epoch_context` (readings -> an epoch's quiz assets)."""
