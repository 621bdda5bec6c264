// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {IScheduledTask, TaskScheduler} from "../TaskScheduler.sol";

/// @title TaskHarness
/// @notice A scheduled task that behaves as told, to test how the chain records
///         a task's outcome: count its runs, revert (with a reason, a custom
///         error or a panic), burn all the gas it is given, or stop the task it owns.
contract TaskHarness is IScheduledTask {
    enum Behaviour {
        Count,
        Revert,
        BurnGas,
        StopOwned,
        RevertCustom,
        Panic
    }

    error Refused(uint256 code);

    Behaviour public behaviour;
    uint256 public runs;
    address public lastCaller;
    uint256 public lastTimestamp;
    /// @notice The task this contract registered, and owns (`registerOwned`).
    uint256 public taskId;

    constructor(Behaviour behaviour_) {
        behaviour = behaviour_;
    }

    function setBehaviour(Behaviour behaviour_) external {
        behaviour = behaviour_;
    }

    /// @notice Registers `target` (this contract or another) as a task this contract
    ///         owns, so that a run of this contract may stop it.
    function registerOwned(TaskScheduler scheduler, address target, uint256 endTime, uint256 frequency) external {
        taskId = scheduler.registerTask(target, endTime, frequency);
    }

    function run() external {
        if (behaviour == Behaviour.Revert) {
            revert("TaskHarness: told to revert");
        }
        if (behaviour == Behaviour.BurnGas) {
            uint256 i;
            while (true) {
                i++;
            }
        }
        if (behaviour == Behaviour.RevertCustom) {
            revert Refused(7);
        }
        if (behaviour == Behaviour.Panic) {
            assert(runs > type(uint256).max - 1);
        }
        if (behaviour == Behaviour.StopOwned) {
            TaskScheduler(msg.sender).stopTask(taskId);
        }
        runs += 1;
        lastCaller = msg.sender;
        lastTimestamp = block.timestamp;
    }
}
