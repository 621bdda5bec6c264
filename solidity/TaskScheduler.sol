// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title IScheduledTask
/// @notice What the scheduler calls on a registered contract: `run()`, with no
///         arguments, from the scheduler's address. The contract keeps whatever
///         it needs (model CID, inputs) in its own storage; a typical `run` calls
///         the inference precompile at 0xF4 and stores the prediction.
interface IScheduledTask {
    function run() external;
}

/// @title TaskScheduler
/// @notice Runs contracts on a schedule, at the top of blocks, as system calls.
/// @dev Deployed at genesis. Which tasks a block runs is a pure function of this
///      contract's storage and the block's timestamp (`dueTasks`): a task is due
///      when it is active, `nextRun <= block.timestamp` and
///      `block.timestamp <= endTime`; a block runs at most MAX_TASKS_PER_BLOCK of
///      the due tasks, those with the smallest `(nextRun, id)`, in that order.
///      The chain calls each task's `run()` with a fixed gas limit and reports
///      the outcome through `recordRun`, which only the system address may call.
///      A task that ran (whatever its outcome) is next due `frequency` seconds
///      after the block that ran it, and ends when that is after `endTime`. A
///      deferred task (its inference results were not in the block) keeps its
///      `nextRun`, so it is the most overdue task of the next block.
contract TaskScheduler {
    enum Status {
        Pending, // registered, not run yet
        Succeeded,
        Reverted,
        OutOfGas,
        Failed, // any other exceptional halt (invalid opcode, stack overflow...)
        Deferred // its inference results were not in the block: retried next block
    }

    struct Task {
        address target;
        address owner;
        uint64 endTime;
        uint64 frequency;
        uint64 nextRun;
        uint64 runs;
        uint64 lastRunBlock;
        Status lastStatus;
        bool active;
        string lastReason;
    }

    /// @notice The sender of `recordRun` (the EIP-4788 system address).
    address public constant SYSTEM_ADDRESS = 0xffffFFFfFFffffffffffffffFfFFFfffFFFfFFfE;
    uint256 public constant MAX_ACTIVE_TASKS = 64;
    uint256 public constant MAX_TASKS_PER_BLOCK = 4;
    uint256 public constant MAX_FREQUENCY = 365 days;

    /// @notice Tasks registered so far; ids count from 1.
    uint256 public taskCount;
    /// @dev Active task ids in increasing order (removal shifts the tail).
    uint256[] private _active;
    mapping(uint256 => Task) private _tasks;

    event TaskRegistered(uint256 indexed id, address indexed target, address indexed owner, uint256 endTime,
        uint256 frequency);
    event TaskUpdated(uint256 indexed id, uint256 endTime, uint256 frequency);
    event TaskStopped(uint256 indexed id);
    event TaskEnded(uint256 indexed id);

    /// @notice Schedules `target.run()` every `frequency` seconds, from `frequency`
    ///         seconds after this block until `endTime` (a timestamp). Returns its id.
    function registerTask(address target, uint256 endTime, uint256 frequency) external returns (uint256 id) {
        require(target.code.length > 0, "TaskScheduler: target has no code");
        require(target != address(this), "TaskScheduler: the scheduler cannot be a task");
        _checkSchedule(endTime, frequency);
        _purgeEnded();
        require(_active.length < MAX_ACTIVE_TASKS, "TaskScheduler: too many active tasks");
        id = ++taskCount;
        Task storage task = _tasks[id];
        task.target = target;
        task.owner = msg.sender;
        task.endTime = uint64(endTime);
        task.frequency = uint64(frequency);
        task.nextRun = uint64(block.timestamp + frequency);
        task.active = true;
        _active.push(id);
        emit TaskRegistered(id, target, msg.sender, endTime, frequency);
    }

    /// @notice Gives an active task a new end and frequency; its next run is
    ///         `frequency` seconds after this block. Only its owner may.
    function updateTask(uint256 id, uint256 endTime, uint256 frequency) external {
        Task storage task = _owned(id);
        _checkSchedule(endTime, frequency);
        task.endTime = uint64(endTime);
        task.frequency = uint64(frequency);
        task.nextRun = uint64(block.timestamp + frequency);
        emit TaskUpdated(id, endTime, frequency);
    }

    /// @notice Stops an active task for good. Only its owner may.
    function stopTask(uint256 id) external {
        _owned(id).active = false;
        _remove(id);
        emit TaskStopped(id);
    }

    /// @notice Task `id`. Reverts for an id never registered.
    function getTask(uint256 id) external view returns (Task memory) {
        require(id != 0 && id <= taskCount, "TaskScheduler: unknown task");
        return _tasks[id];
    }

    /// @notice The ids of the active tasks, in increasing order.
    function activeTasks() external view returns (uint256[] memory) {
        return _active;
    }

    /// @notice The tasks a block with this timestamp runs, in the order it runs them.
    function dueTasks(uint256 timestamp) public view returns (uint256[] memory ids) {
        uint256 n = _active.length;
        uint256[] memory due = new uint256[](n);
        uint256 count;
        for (uint256 i = 0; i < n; i++) {
            Task storage task = _tasks[_active[i]];
            if (task.nextRun <= timestamp && timestamp <= task.endTime) {
                due[count++] = _active[i];
            }
        }
        uint256 chosen = count < MAX_TASKS_PER_BLOCK ? count : MAX_TASKS_PER_BLOCK;
        // partial selection sort on (nextRun, id); ids are already increasing
        for (uint256 i = 0; i < chosen; i++) {
            uint256 best = i;
            for (uint256 j = i + 1; j < count; j++) {
                if (_tasks[due[j]].nextRun < _tasks[due[best]].nextRun) {
                    best = j;
                }
            }
            if (best != i) {
                uint256 picked = due[best];
                for (uint256 k = best; k > i; k--) {
                    due[k] = due[k - 1]; // keeps the rest in id order
                }
                due[i] = picked;
            }
        }
        ids = new uint256[](chosen);
        for (uint256 i = 0; i < chosen; i++) {
            ids[i] = due[i];
        }
    }

    /// @notice Records the outcome of task `id`'s run in this block. System only.
    /// @dev A system call has no receipt, so it emits no event: the outcome is
    ///      read from `getTask` (`lastStatus`, `lastReason`, `lastRunBlock`).
    function recordRun(uint256 id, Status status, string calldata reason) external {
        require(msg.sender == SYSTEM_ADDRESS, "TaskScheduler: only the system records runs");
        Task storage task = _tasks[id];
        task.lastStatus = status;
        task.lastReason = reason;
        if (status == Status.Deferred) {
            return;
        }
        task.runs += 1;
        task.lastRunBlock = uint64(block.number);
        if (!task.active) {
            return; // its own run stopped it
        }
        uint256 next = block.timestamp + task.frequency;
        task.nextRun = uint64(next);
        if (next > task.endTime) {
            task.active = false;
            _remove(id);
        }
    }

    function _checkSchedule(uint256 endTime, uint256 frequency) private view {
        require(frequency != 0 && frequency <= MAX_FREQUENCY, "TaskScheduler: frequency must be 1 second to 365 days");
        require(endTime <= type(uint64).max, "TaskScheduler: endTime beyond 2^64 - 1");
        require(block.timestamp + frequency <= endTime, "TaskScheduler: endTime is before the first run");
    }

    function _owned(uint256 id) private view returns (Task storage task) {
        task = _tasks[id];
        require(task.active, "TaskScheduler: no such active task");
        require(task.owner == msg.sender, "TaskScheduler: not the task's owner");
    }

    /// @dev Drops active tasks whose end has passed without a run to end them.
    function _purgeEnded() private {
        uint256 i = 0;
        while (i < _active.length) {
            Task storage task = _tasks[_active[i]];
            if (task.endTime < block.timestamp) {
                task.active = false;
                emit TaskEnded(_active[i]);
                _remove(_active[i]);
            } else {
                i++;
            }
        }
    }

    function _remove(uint256 id) private {
        uint256 n = _active.length;
        uint256 i = 0;
        while (_active[i] != id) {
            i++;
        }
        for (; i + 1 < n; i++) {
            _active[i] = _active[i + 1];
        }
        _active.pop();
    }
}
