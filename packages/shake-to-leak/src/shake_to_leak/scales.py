"""The model, corpus and pre-training settings of each scale (shared by every experiment of the package).

Experiments that use the same settings share one pre-trained model (``pretrain.pretrained_dir`` hashes them).
"""

from __future__ import annotations

from .data import DataConfig
from .models import ModelConfig
from .pretrain import PretrainConfig

# Six domains: four photos (tiles), one digit class, LFW faces; 20 members + 20 non-members each.
QUICK_DOMAINS = ("photo:chelsea", "photo:astronaut", "photo:coffee", "photo:rocket", "digit:7", "lfw:faces")

SMOKE_MODEL = ModelConfig(resolution=8, unet_channels=(8, 16), text_hidden=16, text_layers=1, text_heads=2,
                          text_intermediate=32, vae_channels=(8,), latent_channels=4)
SMOKE_DATA = DataConfig(domains=("photo:chelsea", "photo:coffee", "digit:7"), members=4, nonmembers=4,
                        resolution=8, tiles_per_side=4)
SMOKE_PRETRAIN = PretrainConfig(vae_steps=4, steps=4, batch_size=4, checkpoint_every=2, log_every=2)

QUICK_MODEL = ModelConfig()
QUICK_DATA = DataConfig(domains=QUICK_DOMAINS, members=20, nonmembers=20, resolution=16, tiles_per_side=8)
# 1000 steps (~130 epochs over the 120 members). Probed on this corpus: SecMI AUC ≈ 0.69 at step 1000 (the paper's
# pre-trained 0.71), but at 2000 steps the model is so over-fitted (loss-attack AUC ≈ 1.0) that SecMI's t-error
# inverts (members ≈ 1.4× the non-members' error, AUC ≈ 0.1); see README "Results".
QUICK_PRETRAIN = PretrainConfig(vae_steps=300, steps=1000, batch_size=16, lr=5e-4)

# Tour (`repro reproduce`): the two target domains only (40 members), pre-trained to about the same number of epochs
# as quick (VAE 100 steps, UNet 250 steps of batch 16 = 100 epochs), so that three seeds fit in a few CPU minutes.
TOUR_DATA = DataConfig(domains=("photo:chelsea", "photo:astronaut"), members=20, nonmembers=20, resolution=16,
                       tiles_per_side=8)
TOUR_PRETRAIN = PretrainConfig(vae_steps=100, steps=250, batch_size=16, lr=5e-4)

# Paper scale: SD v1.1 from the Hub (needs network and a GPU); the corpus is the user's own folder domains.
PAPER_MODEL = ModelConfig(source="CompVis/stable-diffusion-v1-1", resolution=512)
PAPER_DATA = DataConfig(domains=("folder:data/s2l/joe_biden",), members=100, nonmembers=100, resolution=512)
PAPER_PRETRAIN = PretrainConfig()
