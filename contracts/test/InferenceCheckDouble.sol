// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title InferenceCheckDouble
/// @notice Test double of the node's INFERENCE_CHECK precompile for Hardhat, whose EVM has no
/// such precompile: its runtime code is put at the precompile's address (hardhat_setCode) and
/// programmed there. It answers a call whose input hashes to `expectedInput` (any input when
/// zero) with the programmed verdict bytes, and fails like the precompile (no return data) on
/// any other input or when no verdict is programmed. The real precompile is tested on a real
/// node (tests/market).
contract InferenceCheckDouble {
    bytes32 public expectedInput;
    bytes public verdict;

    function program(bytes32 expectedInput_, bytes calldata verdict_) external {
        expectedInput = expectedInput_;
        verdict = verdict_;
    }

    fallback(bytes calldata input) external returns (bytes memory) {
        if (expectedInput != bytes32(0) && keccak256(input) != expectedInput) revert();
        if (verdict.length == 0) revert();
        return verdict;
    }
}
