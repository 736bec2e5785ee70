// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/// @title PoAITimelock
/// @notice OpenZeppelin's TimelockController, unchanged; it owns the admin functions of
/// ModelRegistry and DatasetDAO. The Governor is its proposer and canceller, anyone may execute.
contract PoAITimelock is TimelockController {
    constructor(uint256 minDelay, address[] memory proposers, address[] memory executors, address admin)
        TimelockController(minDelay, proposers, executors, admin)
    {}
}
