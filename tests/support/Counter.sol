// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// Test contract for the RPC and client tests: state, an indexed event and revert paths.
contract Counter {
    uint256 public count;
    event Incremented(address indexed by, uint256 value);

    function increment() external {
        count += 1;
        emit Incremented(msg.sender, count);
    }

    function add(uint256 n) external {
        require(n < 100, "too big");
        count += n;
        emit Incremented(msg.sender, count);
    }

    function fail() external pure {
        revert("nope");
    }
}
