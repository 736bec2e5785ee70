// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import "./Counter.sol";

/// Test contract for the tracing tests: a call into Counter, so a revert happens one frame down.
contract Relay {
    Counter public immutable target;

    constructor(Counter t) {
        target = t;
    }

    function addThrough(uint256 n) external {
        target.add(n);
    }
}
