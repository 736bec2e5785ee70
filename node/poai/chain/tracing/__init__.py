"""Transaction tracing on py-evm, shaped as geth's debug_trace* (struct logger, callTracer,
prestateTracer): `engine` is the hook py-evm lacks, `replay` re-executes stored transactions
under a tracer.  Nothing here runs unless a trace is asked for."""

from __future__ import annotations

from poai.chain.tracing.calls import CallTracer, CallTracerConfig
from poai.chain.tracing.engine import TraceAborted, Tracer
from poai.chain.tracing.prestate import PrestateTracer, PrestateTracerConfig
from poai.chain.tracing.replay import TracedTransaction, replay_block, trace_transaction_on
from poai.chain.tracing.structlog import StructLogConfig, StructLogger

__all__ = [
    "CallTracer", "CallTracerConfig", "PrestateTracer", "PrestateTracerConfig",
    "StructLogConfig", "StructLogger", "TraceAborted", "TracedTransaction", "Tracer",
    "replay_block", "trace_transaction_on",
]
