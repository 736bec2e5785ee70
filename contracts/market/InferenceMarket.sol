// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {StakedPOAI} from "../governance/StakedPOAI.sol";
import {ModelRegistry} from "../registry/ModelRegistry.sol";

/// @title InferenceMarket
/// @notice Paid inference with stake at risk. Buyers escrow a native fee for a job on a model
/// snapshot; a registered worker claims it (locking `minWorkerStake` of its sPOAI behind the job),
/// commits a result hash and the experts it used; after the challenge window the fee is paid out:
/// `royaltyBps` of it to the used experts' contributors in proportion to use, the rest to the
/// worker. A challenger posting `challengeBond` may dispute within the window; the dispute is
/// settled by a stake-weighted vote of sPOAI holders (see `resolveDispute` for the rule).
/// @dev All payouts are credited to `pendingOf` and pulled with `withdraw` (the one exception is
/// the burnt share, pushed to the code-less BURN_ADDRESS). Block numbers throughout.
/// Invariant: address(this).balance == totalEscrow + totalPending.
contract InferenceMarket is ReentrancyGuard {
    enum Status {
        None,
        Open,
        Claimed,
        Committed,
        Challenged,
        Finalized,
        Refunded,
        Fraud
    }

    enum Outcome {
        Fraud,
        Rejected,
        Inconclusive
    }

    struct Job {
        address buyer;
        address worker;
        uint256 snapshotId;
        bytes32 inputHash;
        uint256 fee;
        uint256 deadline; // last block to claim and commit
        Status status;
        bytes32 resultHash;
        uint256 committedAt;
        uint256 stakeLocked;
        uint256[] expertIds;
        uint256[] counts;
    }

    struct Dispute {
        address challenger;
        uint256 bond;
        uint256 snapshotBlock; // votes counted as of this block (before the challenge)
        uint256 votingEnds; // last block to vote
        uint256 fraudVotes;
        uint256 validVotes;
    }

    struct Worker {
        bool registered;
        bool banned;
        uint256 openJobs;
    }

    address public constant BURN_ADDRESS = 0x000000000000000000000000000000000000dEaD;
    uint256 public constant BPS = 10_000;
    uint256 public constant BURN_BPS = 9_000; // of a slashed stake; the rest goes to the challenger
    uint256 public constant MAX_EXPERTS_USED = 64;

    StakedPOAI public immutable staked;
    ModelRegistry public immutable registry;
    uint256 public immutable minWorkerStake;
    uint256 public immutable challengeBond;
    uint256 public immutable challengeWindow; // blocks after commit
    uint256 public immutable disputePeriod; // blocks of voting after a challenge
    uint256 public immutable disputeQuorumBps; // of sPOAI supply at the challenge
    uint256 public immutable royaltyBps; // of a fee, to expert contributors
    uint256 public immutable maxJobBlocks; // furthest deadline from posting

    mapping(uint256 jobId => Job) private _jobs;
    mapping(uint256 jobId => Dispute) public disputes;
    mapping(uint256 jobId => mapping(address voter => bool)) public hasVoted;
    mapping(address worker => Worker) public workers;
    mapping(address account => uint256) public pendingOf;
    uint256 public jobCount;
    uint256 public totalEscrow; // fees of live jobs + bonds of live disputes
    uint256 public totalPending; // credited, not yet withdrawn
    uint256 public totalBurnt;

    event WorkerRegistered(address indexed worker);
    event WorkerDeregistered(address indexed worker);
    event JobPosted(
        uint256 indexed jobId, address indexed buyer, uint256 indexed snapshotId, bytes32 inputHash, uint256 fee, uint256 deadline
    );
    event JobCancelled(uint256 indexed jobId);
    event JobClaimed(uint256 indexed jobId, address indexed worker, uint256 stakeLocked);
    event ResultCommitted(uint256 indexed jobId, bytes32 resultHash, uint256[] expertIds, uint256[] counts);
    event JobRefunded(uint256 indexed jobId, uint256 fee);
    event JobFinalized(uint256 indexed jobId, uint256 workerPay, uint256 royaltyPaid);
    event RoyaltyCredited(uint256 indexed jobId, uint256 indexed expertId, address indexed contributor, uint256 amount);
    event Challenged(uint256 indexed jobId, address indexed challenger, uint256 bond, uint256 votingEnds);
    event DisputeVoted(uint256 indexed jobId, address indexed voter, bool fraud, uint256 weight);
    event DisputeResolved(uint256 indexed jobId, Outcome outcome, uint256 fraudVotes, uint256 validVotes);
    event WorkerSlashed(uint256 indexed jobId, address indexed worker, uint256 amount, uint256 burnt, uint256 reward);
    event Withdrawn(address indexed account, uint256 amount);

    error InvalidParams();
    error AlreadyRegistered();
    error NotRegistered();
    error WorkerBanned();
    error InsufficientStake(uint256 available, uint256 needed);
    error HasOpenJobs();
    error ZeroFee();
    error UnknownSnapshot(uint256 snapshotId);
    error BadDeadline();
    error UnknownJob(uint256 jobId);
    error WrongStatus(Status status);
    error NotBuyer();
    error NotWorker();
    error DeadlinePassed();
    error DeadlineNotPassed();
    error ZeroResult();
    error BadExperts();
    error ExpertNotInSnapshot(uint256 expertId);
    error WrongBond(uint256 expected);
    error ChallengeWindowClosed();
    error ChallengeWindowOpen();
    error SelfChallenge();
    error VotingClosed();
    error VotingOpen();
    error AlreadyVoted();
    error NoVotingPower();
    error PartyCannotVote();
    error NothingToWithdraw();
    error UnexpectedPayment();

    constructor(
        StakedPOAI staked_,
        ModelRegistry registry_,
        uint256 minWorkerStake_,
        uint256 challengeBond_,
        uint256 challengeWindow_,
        uint256 disputePeriod_,
        uint256 disputeQuorumBps_,
        uint256 royaltyBps_,
        uint256 maxJobBlocks_
    ) {
        if (
            address(staked_) == address(0) || address(registry_) == address(0) || minWorkerStake_ == 0
                || challengeBond_ == 0 || challengeWindow_ == 0 || disputePeriod_ == 0 || disputeQuorumBps_ == 0
                || disputeQuorumBps_ > BPS || royaltyBps_ > BPS || maxJobBlocks_ == 0
        ) revert InvalidParams();
        staked = staked_;
        registry = registry_;
        minWorkerStake = minWorkerStake_;
        challengeBond = challengeBond_;
        challengeWindow = challengeWindow_;
        disputePeriod = disputePeriod_;
        disputeQuorumBps = disputeQuorumBps_;
        royaltyBps = royaltyBps_;
        maxJobBlocks = maxJobBlocks_;
    }

    /// @notice Only StakedPOAI sends native POAI here unasked: the proceeds of a slash.
    receive() external payable {
        if (msg.sender != address(staked)) revert UnexpectedPayment();
    }

    // ---- workers ---------------------------------------------------------------------------

    function registerWorker() external {
        Worker storage w = workers[msg.sender];
        if (w.banned) revert WorkerBanned();
        if (w.registered) revert AlreadyRegistered();
        uint256 available = staked.balanceOf(msg.sender) - staked.lockedOf(msg.sender);
        if (available < minWorkerStake) revert InsufficientStake(available, minWorkerStake);
        w.registered = true;
        emit WorkerRegistered(msg.sender);
    }

    function deregisterWorker() external {
        Worker storage w = workers[msg.sender];
        if (!w.registered) revert NotRegistered();
        if (w.openJobs != 0) revert HasOpenJobs();
        w.registered = false;
        emit WorkerDeregistered(msg.sender);
    }

    // ---- jobs ------------------------------------------------------------------------------

    /// @notice Posts a job; msg.value is the fee, escrowed until payout or refund.
    function postJob(uint256 snapshotId, bytes32 inputHash, uint256 deadline) external payable returns (uint256 jobId) {
        if (msg.value == 0) revert ZeroFee();
        if (snapshotId == 0 || snapshotId > registry.snapshotCount()) revert UnknownSnapshot(snapshotId);
        if (deadline <= block.number || deadline > block.number + maxJobBlocks) revert BadDeadline();
        jobId = ++jobCount;
        Job storage j = _jobs[jobId];
        j.buyer = msg.sender;
        j.snapshotId = snapshotId;
        j.inputHash = inputHash;
        j.fee = msg.value;
        j.deadline = deadline;
        j.status = Status.Open;
        totalEscrow += msg.value;
        emit JobPosted(jobId, msg.sender, snapshotId, inputHash, msg.value, deadline);
    }

    /// @notice The buyer withdraws an unclaimed job; the fee is credited back.
    function cancelJob(uint256 jobId) external {
        Job storage j = _job(jobId);
        if (j.status != Status.Open) revert WrongStatus(j.status);
        if (msg.sender != j.buyer) revert NotBuyer();
        j.status = Status.Refunded;
        _release(j.fee, j.buyer);
        emit JobCancelled(jobId);
    }

    /// @notice A registered worker takes an open job, locking `minWorkerStake` sPOAI behind it.
    function claimJob(uint256 jobId) external {
        Job storage j = _job(jobId);
        if (j.status != Status.Open) revert WrongStatus(j.status);
        if (block.number > j.deadline) revert DeadlinePassed();
        Worker storage w = workers[msg.sender];
        if (w.banned) revert WorkerBanned();
        if (!w.registered) revert NotRegistered();
        j.status = Status.Claimed;
        j.worker = msg.sender;
        j.stakeLocked = minWorkerStake;
        w.openJobs += 1;
        emit JobClaimed(jobId, msg.sender, minWorkerStake);
        staked.lock(msg.sender, minWorkerStake); // reverts when the unlocked stake is short
    }

    /// @notice The worker commits its result and the experts it used, with use counts (e.g.
    /// routed tokens). `expertIds` strictly increasing, each in the job's snapshot.
    function commitResult(uint256 jobId, bytes32 resultHash, uint256[] calldata expertIds, uint256[] calldata counts)
        external
    {
        Job storage j = _job(jobId);
        if (j.status != Status.Claimed) revert WrongStatus(j.status);
        if (msg.sender != j.worker) revert NotWorker();
        if (block.number > j.deadline) revert DeadlinePassed();
        if (resultHash == bytes32(0)) revert ZeroResult();
        uint256 n = expertIds.length;
        if (n == 0 || n > MAX_EXPERTS_USED || counts.length != n) revert BadExperts();
        uint256 previous = 0;
        for (uint256 k = 0; k < n; ++k) {
            if (expertIds[k] <= previous || counts[k] == 0) revert BadExperts();
            if (!registry.isExpertInSnapshot(j.snapshotId, expertIds[k])) revert ExpertNotInSnapshot(expertIds[k]);
            previous = expertIds[k];
        }
        j.status = Status.Committed;
        j.resultHash = resultHash;
        j.committedAt = block.number;
        j.expertIds = expertIds;
        j.counts = counts;
        emit ResultCommitted(jobId, resultHash, expertIds, counts);
    }

    /// @notice Anyone refunds a job nobody served by its deadline; a claimer's stake is unlocked
    /// (missing a deadline costs the worker the job, not its stake).
    function refund(uint256 jobId) external {
        Job storage j = _job(jobId);
        if (j.status != Status.Open && j.status != Status.Claimed) revert WrongStatus(j.status);
        if (block.number <= j.deadline) revert DeadlineNotPassed();
        bool claimed = j.status == Status.Claimed;
        j.status = Status.Refunded;
        _release(j.fee, j.buyer);
        emit JobRefunded(jobId, j.fee);
        if (claimed) _releaseWorker(j);
    }

    /// @notice Anyone finalizes an unchallenged result once the challenge window has passed.
    function finalize(uint256 jobId) external {
        Job storage j = _job(jobId);
        if (j.status != Status.Committed) revert WrongStatus(j.status);
        if (block.number <= j.committedAt + challengeWindow) revert ChallengeWindowOpen();
        _payOut(jobId, j);
    }

    // ---- disputes --------------------------------------------------------------------------

    /// @notice Disputes a committed result within the window; msg.value must be `challengeBond`.
    function challenge(uint256 jobId) external payable {
        Job storage j = _job(jobId);
        if (j.status != Status.Committed) revert WrongStatus(j.status);
        if (block.number > j.committedAt + challengeWindow) revert ChallengeWindowClosed();
        if (msg.sender == j.worker) revert SelfChallenge();
        if (msg.value != challengeBond) revert WrongBond(challengeBond);
        j.status = Status.Challenged;
        uint256 votingEnds = block.number + disputePeriod;
        disputes[jobId] = Dispute(msg.sender, msg.value, block.number - 1, votingEnds, 0, 0);
        totalEscrow += msg.value;
        emit Challenged(jobId, msg.sender, msg.value, votingEnds);
    }

    /// @notice sPOAI holders (votes delegated before the challenge) re-execute the job and vote;
    /// weight = their votes at the block before the challenge. Worker and challenger abstain.
    function voteOnDispute(uint256 jobId, bool fraud) external {
        Job storage j = _job(jobId);
        if (j.status != Status.Challenged) revert WrongStatus(j.status);
        Dispute storage d = disputes[jobId];
        if (block.number > d.votingEnds) revert VotingClosed();
        if (msg.sender == j.worker || msg.sender == d.challenger) revert PartyCannotVote();
        if (hasVoted[jobId][msg.sender]) revert AlreadyVoted();
        uint256 weight = staked.getPastVotes(msg.sender, d.snapshotBlock);
        if (weight == 0) revert NoVotingPower();
        hasVoted[jobId][msg.sender] = true;
        if (fraud) d.fraudVotes += weight;
        else d.validVotes += weight;
        emit DisputeVoted(jobId, msg.sender, fraud, weight);
    }

    /// @notice Anyone settles a dispute after voting ends. The rule: with a quorum
    /// (fraud + valid votes >= disputeQuorumBps of the sPOAI supply at the challenge)
    /// - fraud votes > valid votes: FRAUD — the job's locked stake is slashed, 90% burnt (sent to
    ///   BURN_ADDRESS), 10% to the challenger; the buyer gets the fee back, the challenger its bond;
    ///   the worker is banned;
    /// - otherwise (incl. a tie): REJECTED — the bond goes to the worker, the job is paid out;
    /// without a quorum: INCONCLUSIVE — the result stands (paid out), the bond is returned.
    function resolveDispute(uint256 jobId) external nonReentrant {
        Job storage j = _job(jobId);
        if (j.status != Status.Challenged) revert WrongStatus(j.status);
        Dispute storage d = disputes[jobId];
        if (block.number <= d.votingEnds) revert VotingOpen();
        uint256 quorum = (staked.getPastTotalSupply(d.snapshotBlock) * disputeQuorumBps) / BPS;
        Outcome outcome;
        if (d.fraudVotes + d.validVotes < quorum || d.fraudVotes + d.validVotes == 0) {
            outcome = Outcome.Inconclusive;
        } else if (d.fraudVotes > d.validVotes) {
            outcome = Outcome.Fraud;
        } else {
            outcome = Outcome.Rejected;
        }
        emit DisputeResolved(jobId, outcome, d.fraudVotes, d.validVotes);
        if (outcome == Outcome.Fraud) {
            _punish(jobId, j, d);
        } else {
            _release(d.bond, outcome == Outcome.Rejected ? j.worker : d.challenger);
            _payOut(jobId, j);
        }
    }

    // ---- pull payments ---------------------------------------------------------------------

    function withdraw() external nonReentrant {
        uint256 amount = pendingOf[msg.sender];
        if (amount == 0) revert NothingToWithdraw();
        pendingOf[msg.sender] = 0;
        totalPending -= amount;
        emit Withdrawn(msg.sender, amount);
        Address.sendValue(payable(msg.sender), amount);
    }

    // ---- views -----------------------------------------------------------------------------

    function job(uint256 jobId) external view returns (Job memory) {
        return _job(jobId);
    }

    // ---- internals -------------------------------------------------------------------------

    function _job(uint256 jobId) private view returns (Job storage j) {
        j = _jobs[jobId];
        if (j.status == Status.None) revert UnknownJob(jobId);
    }

    /// Moves `amount` from escrow to `to`'s withdrawable balance.
    function _release(uint256 amount, address to) private {
        totalEscrow -= amount;
        pendingOf[to] += amount;
        totalPending += amount;
    }

    function _releaseWorker(Job storage j) private {
        workers[j.worker].openJobs -= 1;
        staked.unlock(j.worker, j.stakeLocked);
    }

    function _payOut(uint256 jobId, Job storage j) private {
        j.status = Status.Finalized;
        uint256 royalty = (j.fee * royaltyBps) / BPS;
        uint256 totalUse = 0;
        uint256 n = j.expertIds.length;
        for (uint256 k = 0; k < n; ++k) {
            totalUse += j.counts[k];
        }
        uint256 paid = 0;
        for (uint256 k = 0; k < n; ++k) {
            uint256 share = (royalty * j.counts[k]) / totalUse;
            if (share == 0) continue;
            address contributor = registry.expert(j.expertIds[k]).contributor;
            _release(share, contributor);
            paid += share;
            emit RoyaltyCredited(jobId, j.expertIds[k], contributor, share);
        }
        // Rounding dust of the royalty goes to the worker, so the fee is paid out exactly.
        uint256 workerPay = j.fee - paid;
        _release(workerPay, j.worker);
        emit JobFinalized(jobId, workerPay, paid);
        _releaseWorker(j);
    }

    function _punish(uint256 jobId, Job storage j, Dispute storage d) private {
        j.status = Status.Fraud;
        Worker storage w = workers[j.worker];
        w.openJobs -= 1;
        w.banned = true;
        w.registered = false;
        _release(j.fee, j.buyer);
        _release(d.bond, d.challenger);
        uint256 amount = j.stakeLocked;
        uint256 burnt = (amount * BURN_BPS) / BPS;
        uint256 reward = amount - burnt;
        // The slash proceeds arrive through receive(); credit the reward, push the burn.
        staked.slash(j.worker, amount);
        pendingOf[d.challenger] += reward;
        totalPending += reward;
        totalBurnt += burnt;
        emit WorkerSlashed(jobId, j.worker, amount, burnt, reward);
        Address.sendValue(payable(BURN_ADDRESS), burnt);
    }
}
