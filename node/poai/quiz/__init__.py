"""The quiz-loss seal: consensus-critical, pure typed functions plus the miner and verifiers.

See DESIGN.md "Quiz-loss seal" and docs/ARCHITECTURE.md "Quiz engine".  Heavy parts (torch,
worker processes) are imported lazily by the modules that need them.
"""

from poai.quiz.context import QuizContext
from poai.quiz.epoch import epoch_index, epoch_key, seed_block_number
from poai.quiz.params import QuizParams
from poai.quiz.seal import InvalidSeal, verify_seal

__all__ = [
    "InvalidSeal",
    "QuizContext",
    "QuizParams",
    "epoch_index",
    "epoch_key",
    "seed_block_number",
    "verify_seal",
]
