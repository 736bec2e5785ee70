// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {ERC20Votes} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Votes.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";

/// @title StakedPOAI (sPOAI)
/// @notice Native POAI wrapped 1:1 into a token with voting power. Withdrawal is two-step
/// (request, then claim after `unbondingBlocks`), so stake cannot leave instantly after a vote
/// or a fraud. The InferenceMarket (set once) may lock stake behind jobs and slash it; slashing
/// reaches unbonding balances too, so requesting a withdrawal is no escape.
/// @dev Clock: block numbers (ERC-6372 default), like the chain's epoch clock
/// (epoch = block.number / EPOCH_BLOCKS). Invariant: address(this).balance ==
/// totalSupply() + totalUnbonding.
contract StakedPOAI is ERC20, ERC20Permit, ERC20Votes, ReentrancyGuard {
    struct Unbonding {
        uint256 amount;
        uint256 releaseBlock;
    }

    uint256 public immutable unbondingBlocks;
    /// @notice The only account allowed to call `setMarket`, once.
    address public immutable deployer;
    /// @notice The InferenceMarket: the only locker and slasher. Zero until set.
    address public market;

    mapping(address account => Unbonding) private _unbonding;
    mapping(address account => uint256) public lockedOf;
    uint256 public totalUnbonding;

    event Deposited(address indexed account, uint256 amount);
    event WithdrawalRequested(address indexed account, uint256 amount, uint256 releaseBlock);
    event WithdrawalClaimed(address indexed account, uint256 amount);
    event MarketSet(address indexed market);
    event StakeLocked(address indexed account, uint256 amount);
    event StakeUnlocked(address indexed account, uint256 amount);
    event Slashed(address indexed account, uint256 fromStake, uint256 fromUnbonding, address to);

    error ZeroAmount();
    error NotDeployer();
    error MarketAlreadySet();
    error ZeroAddress();
    error NotMarket();
    error InsufficientUnlocked(uint256 available, uint256 needed);
    error NothingToClaim();
    error StillUnbonding(uint256 releaseBlock);
    error SlashExceedsStake(uint256 available, uint256 needed);
    error LockedStakeMoved(address account);

    constructor(uint256 unbondingBlocks_)
        ERC20("Staked POAI", "sPOAI")
        ERC20Permit("Staked POAI")
    {
        unbondingBlocks = unbondingBlocks_;
        deployer = msg.sender;
    }

    modifier onlyMarket() {
        if (msg.sender != market) revert NotMarket();
        _;
    }

    /// @notice Sets the market once; the deployer wires it at deployment (migration 004).
    function setMarket(address market_) external {
        if (msg.sender != deployer) revert NotDeployer();
        if (market != address(0)) revert MarketAlreadySet();
        if (market_ == address(0)) revert ZeroAddress();
        market = market_;
        emit MarketSet(market_);
    }

    /// @notice Wraps msg.value native POAI into the same amount of sPOAI.
    function deposit() external payable {
        if (msg.value == 0) revert ZeroAmount();
        _mint(msg.sender, msg.value);
        emit Deposited(msg.sender, msg.value);
    }

    /// @notice Burns `amount` unlocked sPOAI now (its votes go at once) and starts unbonding it.
    /// A new request adds to the pending amount and restarts the delay for all of it.
    function requestWithdrawal(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        _burn(msg.sender, amount); // _update refuses to burn locked stake
        Unbonding storage u = _unbonding[msg.sender];
        u.amount += amount;
        u.releaseBlock = block.number + unbondingBlocks;
        totalUnbonding += amount;
        emit WithdrawalRequested(msg.sender, amount, u.releaseBlock);
    }

    /// @notice Pays out the whole unbonded amount once its release block is reached.
    function claimWithdrawal() external nonReentrant {
        Unbonding memory u = _unbonding[msg.sender];
        if (u.amount == 0) revert NothingToClaim();
        if (block.number < u.releaseBlock) revert StillUnbonding(u.releaseBlock);
        delete _unbonding[msg.sender];
        totalUnbonding -= u.amount;
        emit WithdrawalClaimed(msg.sender, u.amount);
        Address.sendValue(payable(msg.sender), u.amount);
    }

    function unbonding(address account) external view returns (uint256 amount, uint256 releaseBlock) {
        Unbonding memory u = _unbonding[account];
        return (u.amount, u.releaseBlock);
    }

    /// @notice Stake an account could still lose to slashing: tokens plus unbonding amount.
    function slashableOf(address account) public view returns (uint256) {
        return balanceOf(account) + _unbonding[account].amount;
    }

    /// @notice Reserves `amount` of `account`'s tokens behind a market job: locked tokens can be
    /// neither transferred nor withdrawn until unlocked or slashed.
    function lock(address account, uint256 amount) external onlyMarket {
        uint256 available = balanceOf(account) - lockedOf[account];
        if (available < amount) revert InsufficientUnlocked(available, amount);
        lockedOf[account] += amount;
        emit StakeLocked(account, amount);
    }

    function unlock(address account, uint256 amount) external onlyMarket {
        lockedOf[account] -= amount;
        emit StakeUnlocked(account, amount);
    }

    /// @notice Takes `amount` of `account`'s stake (tokens first, then unbonding) and sends the
    /// native POAI to the market, which splits it (burn / challenger reward). Locked stake
    /// covering the slash is released first.
    function slash(address account, uint256 amount) external onlyMarket nonReentrant {
        uint256 available = slashableOf(account);
        if (amount > available) revert SlashExceedsStake(available, amount);
        uint256 locked = lockedOf[account];
        lockedOf[account] = locked > amount ? locked - amount : 0;
        uint256 fromStake = amount < balanceOf(account) ? amount : balanceOf(account);
        uint256 fromUnbonding = amount - fromStake;
        if (fromStake > 0) _burn(account, fromStake);
        if (fromUnbonding > 0) {
            _unbonding[account].amount -= fromUnbonding;
            totalUnbonding -= fromUnbonding;
        }
        emit Slashed(account, fromStake, fromUnbonding, msg.sender);
        Address.sendValue(payable(msg.sender), amount);
    }

    // ---- OpenZeppelin plumbing -------------------------------------------------------------

    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Votes) {
        super._update(from, to, value);
        // Locked stake must stay put: transfers and withdrawal requests may only move the rest.
        if (from != address(0) && balanceOf(from) < lockedOf[from]) revert LockedStakeMoved(from);
    }

    function nonces(address owner) public view override(ERC20Permit, Nonces) returns (uint256) {
        return super.nonces(owner);
    }
}
