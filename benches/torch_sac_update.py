"""PyTorch CPU reference for one plain SAC update, the same as equigate-learn's `Sac::train_step`.

    /work/venv-torch/bin/python benches/torch_sac_update.py [--seconds 10] [--warmup 50] [--threads 2]

Prints one JSON line: {"impl": "pytorch", "what": "sac_update", "updates_per_s": ..., ...}.
benches/compare_torch.sh runs it alternately with our update_rate bench and prints the ratios.

Measured with torch 2.15.0 from PyPI (pinned in benches/requirements-torch.txt): the default Linux
wheel, a CUDA build (2.15.0+cu132, ~5 GB venv with its nvidia-* wheels), run on the CPU only. The
CPU-only wheels of PyTorch's own index are the lighter choice where that index is reachable (it was
not here); the arithmetic on the CPU is the same. Install into a venv outside the repository:

    python3 -m venv /work/venv-torch && /work/venv-torch/bin/pip install -r benches/requirements-torch.txt

The update matches crates/equigate-learn/src/sac.rs and nets.rs (RPP's jax-rl SAC defaults,
reference/algorithms.md §1.2), so that both sides do the same arithmetic:
- observation 22, action 6, batch 256, sampled each update from a fixed random replay of 10,000
  transitions (as our bench samples from a ReplayBuffer);
- twin critics, two 28 → 256 → 256 → 1 ReLU MLPs on cat(s, a); actor 22 → 256 → 256 → 2·6 (mean,
  raw log-std), log σ = −5 + ½·7·(tanh(raw) + 1); nn.Linear's default U(±1/√d_in) init, as ours;
- tanh-Gaussian with log(1 − tanh² u) = 2(log 2 − u − softplus(−2u));
- critic: y = r + γ(1 − d)(min_j Q̄_j(s', a') − α log π(a'|s')) without graph,
  L_Q = Σ_j mean (Q_j − y)²;
- actor: L_π = mean[α log π(ã|s) − min_j Q_j(s, ã)], the critics' weights get no gradient (their
  requires_grad is off during the actor step, like our no-grad critic copy);
- temperature: L(α) = −log α · (mean log π + H̄), H̄ = −|A|/2, no clipping (as ours);
- Adam lr 3e-4, ε 1e-8; global-norm gradient clipping 0.5 per network (clip_grad_norm_);
- Polyak τ = 0.005 on the target critics; γ = 0.99; α₀ = 1; α read once per update.
"""

import argparse
import json
import math
import time
import warnings

# torch warns at import when NumPy is missing; this script does not use NumPy.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")

import torch  # noqa: E402
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

OBS_DIM, ACT_DIM, HIDDEN, BATCH = 22, 6, 256, 256
LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
LR, ADAM_EPS, MAX_GRAD_NORM = 3e-4, 1e-8, 0.5
GAMMA, TAU = 0.99, 0.005
TARGET_ENTROPY = -0.5 * ACT_DIM
BUFFER = 10_000


def mlp(d_in, d_out):
    return nn.Sequential(
        nn.Linear(d_in, HIDDEN),
        nn.ReLU(),
        nn.Linear(HIDDEN, HIDDEN),
        nn.ReLU(),
        nn.Linear(HIDDEN, d_out),
    )


class TwinCritic(nn.Module):
    def __init__(self):
        super().__init__()
        self.q1 = mlp(OBS_DIM + ACT_DIM, 1)
        self.q2 = mlp(OBS_DIM + ACT_DIM, 1)

    def forward(self, obs, act):
        x = torch.cat([obs, act], 1)
        return torch.cat([self.q1(x), self.q2(x)], 1)  # [batch, 2]


class Actor(nn.Module):
    def __init__(self):
        super().__init__()
        self.mlp = mlp(OBS_DIM, 2 * ACT_DIM)

    def forward(self, obs):
        y = self.mlp(obs)
        mean, raw = y[:, :ACT_DIM], y[:, ACT_DIM:]
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(raw) + 1.0)
        return mean, log_std


def tanh_gaussian(mean, log_std):
    """a = tanh(μ + σε) and log π(a|s) `[batch, 1]` (the form of our `nets::tanh_gaussian`)."""
    eps = torch.randn_like(mean)
    u = mean + log_std.exp() * eps
    gauss = -0.5 * eps.square() - log_std - 0.5 * math.log(2.0 * math.pi)
    log_det = 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))
    return torch.tanh(u), (gauss - log_det).sum(1, keepdim=True)


class Sac:
    def __init__(self):
        self.q = TwinCritic()
        self.q_target = TwinCritic()
        self.q_target.load_state_dict(self.q.state_dict())
        self.q_target.requires_grad_(False)
        self.actor = Actor()
        self.log_alpha = torch.zeros(1, requires_grad=True)  # α₀ = 1
        self.q_optimizer = torch.optim.Adam(self.q.parameters(), lr=LR, eps=ADAM_EPS)
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=LR, eps=ADAM_EPS)
        self.alpha_optimizer = torch.optim.Adam([self.log_alpha], lr=LR, eps=ADAM_EPS)
        self.q_params = list(self.q.parameters())
        self.q_target_params = list(self.q_target.parameters())

    def train_step(self, obs, actions, rewards, next_obs, terminated):
        alpha = self.log_alpha.exp().item()

        # Critic.
        with torch.no_grad():
            next_actions, next_log_pi = tanh_gaussian(*self.actor(next_obs))
            q_next = self.q_target(next_obs, next_actions).min(1, keepdim=True).values
            y = rewards + GAMMA * (1.0 - terminated) * (q_next - alpha * next_log_pi)
        q = self.q(obs, actions)
        q_loss = (q - y).square().sum(1).mean()
        self.q_optimizer.zero_grad(set_to_none=True)
        q_loss.backward()
        nn.utils.clip_grad_norm_(self.q_params, MAX_GRAD_NORM)
        self.q_optimizer.step()

        # Actor, the critics frozen.
        self.q.requires_grad_(False)
        pi, log_pi = tanh_gaussian(*self.actor(obs))
        q_pi = self.q(obs, pi).min(1, keepdim=True).values
        actor_loss = (alpha * log_pi - q_pi).mean()
        self.actor_optimizer.zero_grad(set_to_none=True)
        actor_loss.backward()
        nn.utils.clip_grad_norm_(self.actor.parameters(), MAX_GRAD_NORM)
        self.actor_optimizer.step()
        self.q.requires_grad_(True)

        # Temperature.
        log_pi = log_pi.detach()
        alpha_loss = -(self.log_alpha * (log_pi.mean() + TARGET_ENTROPY)).sum()
        self.alpha_optimizer.zero_grad(set_to_none=True)
        alpha_loss.backward()
        self.alpha_optimizer.step()

        # Polyak.
        with torch.no_grad():
            torch._foreach_lerp_(self.q_target_params, self.q_params, TAU)

        # The scalars our SacMetrics reports.
        return (q_loss.item(), q[:, 0].mean().item(), actor_loss.item(), -log_pi.mean().item())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="timed duration (default 10)")
    parser.add_argument("--warmup", type=int, default=50, help="untimed updates first (default 50)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    # A fixed random replay, as our bench's: s, s' ~ N(0, I), a = tanh(N(0, I)), r = −|s₀|.
    obs = torch.randn(BUFFER, OBS_DIM)
    next_obs = torch.randn(BUFFER, OBS_DIM)
    actions = torch.randn(BUFFER, ACT_DIM).tanh()
    rewards = -obs[:, :1].abs()
    terminated = torch.zeros(BUFFER, 1)

    def sample():
        i = torch.randint(0, BUFFER, (BATCH,))
        return obs[i], actions[i], rewards[i], next_obs[i], terminated[i]

    sac = Sac()
    for _ in range(args.warmup):
        sac.train_step(*sample())
    updates = 0
    start = time.perf_counter()
    while True:
        metrics = sac.train_step(*sample())
        updates += 1
        elapsed = time.perf_counter() - start
        if elapsed >= args.seconds:
            break
    assert all(math.isfinite(m) for m in metrics), metrics
    print(
        json.dumps(
            {
                "impl": "pytorch",
                "what": "sac_update",
                "updates_per_s": round(updates / elapsed, 2),
                "updates": updates,
                "seconds": round(elapsed, 3),
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
