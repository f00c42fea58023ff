"""Student code never runs inside the grader: isolated workers, one sandbox per submission.

    grader process (trusted)                    sandbox (bubblewrap; untrusted)
    SandboxHandle.run(probe, case) ──pickle──►  supervisor (imports torch once)
                                                  └─ fork: one child per exercise, rlimited,
                                                     imports the submission, runs probes
    wire.loads (bounded) + sanitize ◄────────── torch.save(result)

launcher.py builds the bwrap command; supervisor.py runs inside; protocol.py frames messages;
client.py is the grader-side handle (SandboxHandle). See docs/design.md, "The trust boundary".
"""
