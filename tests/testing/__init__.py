"""What the tests share that is not a fixture: helpers, fakes, kits (fixtures live in conftest.py files).

- env: the checkout (ROOT), an environment kept from the real home; repos: scratch repos, stage cards;
  cli: autometta in a child process (run_process, Result).
- ticks: script-family stages through whole ticks; tick_processes: ticks as processes, detached runners;
  decisions: facts for the pure decision, built by hand; lanes: max_parallel, workers that write a file,
  a lane's fields.
- waits: a condition polled, a child reaped; tmux: a private server, a pane awaited; chromium.
- billing: a fake 1Password, refs files, codex homes, the ``world`` fixture; panel: the verifier panel in
  config.yaml; fake_api: a scriptable model API; schedulers: fake crontab, systemctl, launchctl.
- worlds: a world built once, copied per test; top_repos: repos in the states top shows, top in tmux;
  pyz: the built zipapp; kiwi_family: a fourth family; fuzz_world and forkserver: the fuzz world and the
  fork server that runs its commands.
- agent_clis: the real claude and codex CLIs (``python -m tests.testing.agent_clis --install``);
  model_server: a scripted model for them.
"""
