"""FiLM: feature-wise linear modulation of features by a conditioning vector (Perez et al. 2018)."""

from torch import nn


class FiLM(nn.Module):
    """h' = h ⊙ (1 + γ(c)) + β(c), with γ, β linear in the conditioning ``c``.

    ``h`` ``(..., features)``, ``c`` ``(..., cond_dim)``; leading dims broadcast. γ and β start at
    zero, so the block is the identity at initialisation.
    """

    def __init__(self, cond_dim, features):
        super().__init__()
        self.proj = nn.Linear(int(cond_dim), 2 * int(features))
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, h, c):
        gamma, beta = self.proj(c).chunk(2, dim=-1)
        return h * (1 + gamma) + beta
