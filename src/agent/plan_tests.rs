//! Table tests for the reconcile plan.

use super::*;

fn want(power: Power, status: Status) -> Want {
    Want {
        generation: 3,
        power,
        force_stop: false,
        reboot_seq: 0,
        status,
        reason: String::new(),
        foreign: false,
    }
}

fn foreign_domain(state: DomState) -> Have {
    Have {
        state,
        generation: None,
    }
}

fn have(state: DomState) -> Have {
    Have {
        state,
        generation: Some(3),
    }
}

#[test]
fn steps_table() {
    use DomState::*;
    use Power::{Deleted, Paused as WPaused, Running as WRunning, Stopped};
    let m = Memory::default();
    let asked = |ms| Memory {
        shutdown_asked_ms: Some(ms),
        ..Memory::default()
    };
    // (what, want, have, memory, step)
    type Case = (&'static str, Option<Want>, Option<Have>, Memory, Step);
    let cases: Vec<Case> = vec![
        ("nothing anywhere", None, None, m, Step::Nothing),
        (
            "new vm",
            Some(want(WRunning, Status::Creating)),
            None,
            m,
            Step::Create,
        ),
        (
            "defined, start it",
            Some(want(WRunning, Status::Creating)),
            Some(have(ShutOff)),
            m,
            Step::Start,
        ),
        (
            "running, report",
            Some(want(WRunning, Status::Creating)),
            Some(have(Running)),
            m,
            Step::Report {
                status: Status::Running,
                reason: String::new(),
            },
        ),
        (
            "running, reported",
            Some(want(WRunning, Status::Running)),
            Some(have(Running)),
            m,
            Step::Nothing,
        ),
        (
            "crashed, restart",
            Some(want(WRunning, Status::Running)),
            Some(have(Crashed)),
            m,
            Step::Start,
        ),
        (
            "paused, resume",
            Some(want(WRunning, Status::Paused)),
            Some(have(Paused)),
            m,
            Step::Resume,
        ),
        (
            "reboot asked",
            Some(Want {
                reboot_seq: 2,
                ..want(WRunning, Status::Running)
            }),
            Some(have(Running)),
            Memory {
                reboot_done: 1,
                ..m
            },
            Step::Reboot,
        ),
        (
            "reboot done",
            Some(Want {
                reboot_seq: 2,
                ..want(WRunning, Status::Running)
            }),
            Some(have(Running)),
            Memory {
                reboot_done: 2,
                ..m
            },
            Step::Nothing,
        ),
        (
            "stop: ask",
            Some(want(Stopped, Status::Running)),
            Some(have(Running)),
            m,
            Step::Shutdown,
        ),
        (
            "stop: wait",
            Some(want(Stopped, Status::Running)),
            Some(have(Running)),
            asked(5_000),
            Step::Nothing,
        ),
        (
            "stop: grace over",
            Some(want(Stopped, Status::Running)),
            Some(have(Running)),
            asked(SHUTDOWN_GRACE_MS),
            Step::Destroy,
        ),
        (
            "force stop",
            Some(Want {
                force_stop: true,
                ..want(Stopped, Status::Running)
            }),
            Some(have(Running)),
            m,
            Step::Destroy,
        ),
        (
            "stop a paused vm",
            Some(want(Stopped, Status::Paused)),
            Some(have(Paused)),
            m,
            Step::Destroy,
        ),
        (
            "stopped, report",
            Some(want(Stopped, Status::Running)),
            Some(have(ShutOff)),
            m,
            Step::Report {
                status: Status::Stopped,
                reason: String::new(),
            },
        ),
        (
            "stopped, created stopped",
            Some(want(Stopped, Status::Creating)),
            None,
            m,
            Step::Create,
        ),
        (
            "pause",
            Some(want(WPaused, Status::Running)),
            Some(have(Running)),
            m,
            Step::Pause,
        ),
        (
            "pause from off",
            Some(want(WPaused, Status::Stopped)),
            Some(have(ShutOff)),
            m,
            Step::Start,
        ),
        (
            "changed hardware",
            Some(Want {
                generation: 4,
                ..want(Stopped, Status::Stopped)
            }),
            Some(have(ShutOff)),
            m,
            Step::Redefine,
        ),
        (
            "delete",
            Some(want(Deleted, Status::Deleting)),
            Some(have(Running)),
            m,
            Step::Delete,
        ),
        (
            "deleted, report",
            Some(want(Deleted, Status::Deleting)),
            None,
            m,
            Step::ReportRemoved,
        ),
        (
            "foreign domain",
            None,
            Some(Have {
                state: Running,
                generation: None,
            }),
            m,
            Step::Discover,
        ),
        (
            "our orphan",
            None,
            Some(have(ShutOff)),
            m,
            Step::DeleteOrphan,
        ),
        (
            "moved away",
            None,
            Some(have(ShutOff)),
            Memory {
                placed_elsewhere: true,
                ..m
            },
            Step::Nothing,
        ),
        (
            "discovered vm is never redefined",
            Some(Want {
                generation: 9,
                foreign: true,
                ..want(WRunning, Status::Running)
            }),
            Some(Have {
                state: Running,
                generation: None,
            }),
            m,
            Step::Nothing,
        ),
        (
            "shutting down by itself",
            Some(want(WRunning, Status::Running)),
            Some(have(ShuttingDown)),
            m,
            Step::Report {
                status: Status::Running,
                reason: "shutting down".into(),
            },
        ),
        (
            "discovered paused vm stays paused",
            Some(Want {
                foreign: true,
                ..want(WPaused, Status::Paused)
            }),
            Some(foreign_domain(Paused)),
            m,
            Step::Nothing,
        ),
        (
            "discovered vm is powered like any",
            Some(Want {
                foreign: true,
                ..want(Stopped, Status::Running)
            }),
            Some(foreign_domain(Running)),
            m,
            Step::Shutdown,
        ),
        (
            "someone else's domain in the way is never touched",
            Some(want(Stopped, Status::Creating)),
            Some(foreign_domain(Running)),
            m,
            Step::Report {
                status: Status::Failed,
                reason: conflict_reason("web1"),
            },
        ),
        (
            "in the way, already reported",
            Some(Want {
                reason: conflict_reason("web1"),
                ..want(WRunning, Status::Failed)
            }),
            Some(foreign_domain(ShutOff)),
            m,
            Step::Nothing,
        ),
        (
            "deleting a vm whose name someone else's domain holds leaves that domain",
            Some(want(Deleted, Status::Failed)),
            Some(foreign_domain(Running)),
            m,
            Step::ReportRemoved,
        ),
        (
            "deleting a discovered vm undefines its domain",
            Some(Want {
                foreign: true,
                ..want(Deleted, Status::Stopped)
            }),
            Some(foreign_domain(ShutOff)),
            m,
            Step::Delete,
        ),
    ];
    for (what, w, h, mem, expected) in cases {
        assert_eq!(
            step("web1", w.as_ref(), h.as_ref(), mem),
            expected,
            "{what}"
        );
    }
}

#[test]
fn observed_names_every_state() {
    assert_eq!(observed(None).0, Status::Creating);
    assert_eq!(
        observed(Some(&have(DomState::Crashed))),
        (Status::Failed, "the guest crashed".to_string())
    );
}
