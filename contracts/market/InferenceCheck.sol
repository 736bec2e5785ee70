// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title InferenceCheck
/// @notice The node's INFERENCE_CHECK precompile: replays a market job under its model snapshot
/// and says whether the worker's output and expert-use counts follow the job's decoding rule.
/// Mirror of node/poai/consensus/inference_check.py (constants, ABI, gas); keep them equal.
/// @dev Input: abi.encode(uint256 snapshotId, bytes prompt, uint256 maxTokens,
/// uint256 temperatureMilli, uint256 topPMicro, uint256 seed, bytes outputTokens,
/// uint256[] expertIds, uint256[] counts); outputTokens packs 2 bytes per token, big-endian.
/// Output: abi.encode(uint256 fault, uint256 index, uint256[] expertIds, uint256[] counts).
/// A malformed or over-limit job, or an unknown snapshot, makes the call fail (all gas given
/// is consumed, nothing returned).
/// Settle on `fault` only: when fault == 0 the returned expertIds/counts echo the claim, but on a
/// fault they are this node's recomputation, which a routing near-tie may make differ between
/// nodes; never write them to state.
library InferenceCheck {
    address internal constant ADDRESS = address(0x0f00);

    uint256 internal constant MAX_PROMPT_BYTES = 256;
    uint256 internal constant MAX_OUTPUT_TOKENS = 255;
    uint256 internal constant MAX_TEMPERATURE_MILLI = 2000;
    uint256 internal constant TOP_P_ONE = 1_000_000;

    /// Gas of one check: G_BASE + G_PER_TOKEN * (prompt bytes + 1 + output tokens).
    uint256 internal constant G_BASE = 50_000;
    uint256 internal constant G_PER_TOKEN = 2_000;

    /// Fault values of the verdict.
    uint256 internal constant FAULT_NONE = 0;
    uint256 internal constant FAULT_WRONG_TOKEN = 1;
    uint256 internal constant FAULT_WRONG_END = 2;
    uint256 internal constant FAULT_WRONG_COUNT = 3;
    /// `index` when no output position is at fault.
    uint256 internal constant NO_INDEX = type(uint256).max;

    error InferenceCheckFailed();

    /// Gas the precompile charges for a job with these lengths.
    function gasFor(uint256 promptBytes, uint256 outputTokens) internal pure returns (uint256) {
        return G_BASE + G_PER_TOKEN * (promptBytes + 1 + outputTokens);
    }

    function encodeCall(
        uint256 snapshotId,
        bytes memory prompt,
        uint256 maxTokens,
        uint256 temperatureMilli,
        uint256 topPMicro,
        uint256 seed,
        bytes memory outputTokens,
        uint256[] memory expertIds,
        uint256[] memory counts
    ) internal pure returns (bytes memory) {
        return abi.encode(
            snapshotId, prompt, maxTokens, temperatureMilli, topPMicro, seed, outputTokens,
            expertIds, counts
        );
    }

    function decodeVerdict(bytes memory data)
        internal
        pure
        returns (uint256 fault, uint256 index, uint256[] memory expertIds, uint256[] memory counts)
    {
        return abi.decode(data, (uint256, uint256, uint256[], uint256[]));
    }

    /// Staticcalls the precompile with exactly its gas; reverts InferenceCheckFailed when the
    /// call fails (malformed job, unknown snapshot, or not enough gas left).
    function check(bytes memory input, uint256 promptBytes, uint256 outputTokens)
        internal
        view
        returns (uint256 fault, uint256 index, uint256[] memory expertIds, uint256[] memory counts)
    {
        (bool ok, bytes memory out) = ADDRESS.staticcall{gas: gasFor(promptBytes, outputTokens)}(input);
        if (!ok || out.length == 0) revert InferenceCheckFailed();
        return decodeVerdict(out);
    }
}
