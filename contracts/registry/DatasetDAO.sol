// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Checkpoints} from "@openzeppelin/contracts/utils/structs/Checkpoints.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

/// @title DatasetDAO
/// @notice The quiz datasets, commit-reveal: governance (the timelock, owner) schedules an
/// encrypted dataset with a commitment keccak256(key) for a future activation epoch; anyone
/// reveals the key once that epoch has begun, so nobody can precompute the quiz before.
/// @dev Dataset ids start at 1 (1 = genesis, whose key is public). Epoch = block.number / epochBlocks.
contract DatasetDAO is Ownable {
    using Checkpoints for Checkpoints.Trace208;

    struct Dataset {
        bytes32 contentHash; // sha256 of the encrypted dataset file
        uint64 recordCount;
        bytes32 keyCommitment; // keccak256(abi.encodePacked(key))
        uint64 activationEpoch;
        bool revealed;
        bytes32 key;
    }

    uint256 public immutable epochBlocks;
    Dataset[] private _datasets; // index id - 1
    Checkpoints.Trace208 private _schedule; // activation epoch => dataset id

    event DatasetScheduled(
        uint256 indexed datasetId,
        bytes32 contentHash,
        uint64 recordCount,
        bytes32 keyCommitment,
        uint256 indexed activationEpoch
    );
    event KeyRevealed(uint256 indexed datasetId, bytes32 key);

    error InvalidEpochBlocks();
    error ZeroContentHash();
    error ZeroRecordCount();
    error ZeroCommitment();
    error EpochNotInFuture(uint256 activationEpoch, uint256 currentEpoch);
    error EpochBeforeLastScheduled(uint256 activationEpoch, uint256 lastScheduled);
    error UnknownDataset(uint256 datasetId);
    error AlreadyRevealed(uint256 datasetId);
    error NotYetActive(uint256 activationEpoch, uint256 currentEpoch);
    error KeyMismatch();

    /// @param owner_ the governance timelock
    /// @param genesisKey the genesis dataset's key, public from the start
    constructor(
        address owner_,
        uint256 epochBlocks_,
        bytes32 genesisContentHash,
        uint64 genesisRecordCount,
        bytes32 genesisKey
    ) Ownable(owner_) {
        if (epochBlocks_ == 0) revert InvalidEpochBlocks();
        epochBlocks = epochBlocks_;
        uint256 id = _add(genesisContentHash, genesisRecordCount, keccak256(abi.encodePacked(genesisKey)), 0);
        _datasets[id - 1].revealed = true;
        _datasets[id - 1].key = genesisKey;
        emit KeyRevealed(id, genesisKey);
    }

    /// @notice Schedules a dataset for a future epoch (timelock only). Scheduling the same epoch
    /// as the last scheduled one replaces that pending choice.
    function scheduleDataset(bytes32 contentHash, uint64 recordCount, bytes32 keyCommitment, uint64 activationEpoch)
        external
        onlyOwner
        returns (uint256 datasetId)
    {
        uint256 nowEpoch = currentEpoch();
        if (activationEpoch <= nowEpoch) revert EpochNotInFuture(activationEpoch, nowEpoch);
        (, uint48 lastKey,) = _schedule.latestCheckpoint();
        if (activationEpoch < lastKey) revert EpochBeforeLastScheduled(activationEpoch, lastKey);
        return _add(contentHash, recordCount, keyCommitment, activationEpoch);
    }

    /// @notice Publishes a dataset's key; accepted only if it matches the commitment and the
    /// dataset's activation epoch has begun.
    function revealKey(uint256 datasetId, bytes32 key) external {
        Dataset storage d = _dataset(datasetId);
        if (d.revealed) revert AlreadyRevealed(datasetId);
        uint256 nowEpoch = currentEpoch();
        if (nowEpoch < d.activationEpoch) revert NotYetActive(d.activationEpoch, nowEpoch);
        if (keccak256(abi.encodePacked(key)) != d.keyCommitment) revert KeyMismatch();
        d.revealed = true;
        d.key = key;
        emit KeyRevealed(datasetId, key);
    }

    function currentEpoch() public view returns (uint256) {
        return block.number / epochBlocks;
    }

    function datasetCount() external view returns (uint256) {
        return _datasets.length;
    }

    function dataset(uint256 datasetId) external view returns (Dataset memory) {
        return _dataset(datasetId);
    }

    /// @notice The dataset active at `epoch` and its key (zero while unrevealed).
    function activeDataset(uint256 epoch)
        external
        view
        returns (uint256 datasetId, bytes32 contentHash, uint64 recordCount, bytes32 key, bool revealed)
    {
        datasetId = _schedule.upperLookup(SafeCast.toUint48(epoch));
        Dataset storage d = _datasets[datasetId - 1];
        return (datasetId, d.contentHash, d.recordCount, d.key, d.revealed);
    }

    function _add(bytes32 contentHash, uint64 recordCount, bytes32 keyCommitment, uint64 activationEpoch)
        private
        returns (uint256 datasetId)
    {
        if (contentHash == bytes32(0)) revert ZeroContentHash();
        if (recordCount == 0) revert ZeroRecordCount();
        if (keyCommitment == bytes32(0)) revert ZeroCommitment();
        _datasets.push(Dataset(contentHash, recordCount, keyCommitment, activationEpoch, false, bytes32(0)));
        datasetId = _datasets.length;
        _schedule.push(SafeCast.toUint48(activationEpoch), SafeCast.toUint208(datasetId));
        emit DatasetScheduled(datasetId, contentHash, recordCount, keyCommitment, activationEpoch);
    }

    function _dataset(uint256 datasetId) private view returns (Dataset storage) {
        if (datasetId == 0 || datasetId > _datasets.length) revert UnknownDataset(datasetId);
        return _datasets[datasetId - 1];
    }
}
