"""What the tests share that is not a fixture: helpers, fakes, kits (fixtures live in conftest.py files).

env (the checkout, an isolated environment), repos (scratch repos, stage cards), cli (autometta in a child
process), ticks (whole ticks of script-family stages), tick_processes (ticks as processes, detached runners),
billing (a fake 1Password, refs files, codex homes), fake_api (a scriptable model API), schedulers (fake
crontab/systemctl/launchctl), worlds (a world built once, copied per test), top_repos (repos in top's states, top in
tmux), pyz (the built zipapp), kiwi_family (a fourth family), fuzz_world and forkserver (the fuzz world and its fork
server), agent_clis (the real claude and codex CLIs) and model_server (a scripted model for them).
"""
