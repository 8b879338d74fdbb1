"""Fine-tuning methods (shake_to_leak.finetune*): what each trains, save/load round trips, seeding, bad input."""

import dataclasses
import json
import sys
from pathlib import Path

import pytest
import torch
from repro_shared.errors import ConfigError

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib does not put tests/ on sys.path

from s2l_helpers import CONTEXT_DIM, MAX_TOKENS, tiny_images, tiny_pipeline
from shake_to_leak.finetune import (
    METHODS,
    FinetuneConfig,
    finetune,
    finetuned_prompt,
    load_finetuned,
    paper_defaults,
    quick_defaults,
    read_losses,
    trainable_parameter_count,
)
from shake_to_leak.finetune_hypernetwork import installed_hypernetwork

torch.set_num_threads(1)
PROMPT = "a photo of chelsea"
TRAINED_METHODS = [m for m in METHODS if m != "perturb"]


@pytest.fixture(scope="module")
def token_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tokenizer")


@pytest.fixture(scope="module")
def images():
    return tiny_images(4, seed=1)


def fresh(token_dir):
    """The same random base pipeline every time (seed 0)."""
    return tiny_pipeline(token_dir, seed=0)


def run(pipe, images, method, out_dir, class_images=None, **overrides):
    overrides = {"ti_tokens": 4, **overrides}
    config = dataclasses.replace(quick_defaults(method, steps=3), batch_size=2, **overrides)
    return finetune(pipe, images, PROMPT, config, out_dir, progress=False, class_images=class_images)


def states(pipe):
    return {name: {k: v.detach().clone() for k, v in getattr(pipe, name).state_dict().items()}
            for name in ("unet", "text_encoder", "vae")}


def changed(before, after):
    """Names of tensors present in both state dicts whose values differ."""
    return {k for k in before if k in after and not torch.equal(before[k], after[k])}


def strip_lora(state):
    """Base weights of a peft-wrapped module under their original names (peft moves them to ``.base_layer``)."""
    return {k.replace(".base_layer", ""): v for k, v in state.items() if "lora_" not in k}


def context_and_eps(pipe, prompt=PROMPT):
    ids = pipe.tokenizer(finetuned_prompt(pipe, prompt), padding="max_length", max_length=MAX_TOKENS,
                         return_tensors="pt").input_ids
    gen = torch.Generator().manual_seed(7)
    latents = torch.randn(2, 4, 8, 8, generator=gen)
    with torch.no_grad():
        context = pipe.text_encoder(ids)[0]
        eps = pipe.unet(latents, torch.tensor([10, 600]), context.expand(2, -1, -1)).sample
    return context, eps


# -------------------------------------------------------------------------------------------------- config validation


def test_unknown_method_is_a_config_error_naming_the_valid_ones():
    with pytest.raises(ConfigError) as info:
        FinetuneConfig("dream-booth")
    assert "dream-booth" in str(info.value) and all(m in str(info.value) for m in METHODS)
    with pytest.raises(ConfigError):
        paper_defaults("full")


@pytest.mark.parametrize(
    "field, value",
    [("steps", 0), ("lr", 0.0), ("batch_size", 0), ("lora_rank", 0), ("ti_tokens", -1), ("hypernet_hidden_mult", 0),
     ("perturb_std", 0.0), ("steps", 2.5), ("lora_rank", True), ("weight_decay", -0.1)],
)
def test_non_positive_or_non_integer_settings_are_rejected(field, value):
    with pytest.raises(ConfigError, match=field):
        FinetuneConfig("dreambooth", **{field: value})


def test_paper_defaults_follow_the_released_scripts():
    db, db_lora, lora = paper_defaults("dreambooth"), paper_defaults("dreambooth+lora"), paper_defaults("lora")
    assert (db.lr, db.batch_size, db.steps, db.weight_decay, db.max_grad_norm) == (1e-6, 4, 50_000, 1e-2, 1.0)
    assert (db_lora.batch_size, db_lora.steps, db_lora.lora_rank, db_lora.lora_alpha) == (2, 100_000, 8, 32.0)
    assert lora.lora_vae and not db_lora.lora_vae
    assert paper_defaults("textual-inversion").ti_tokens == 12  # 9.2K params = 12 x 768
    assert paper_defaults("perturb").perturb_std == 8e-4
    assert FinetuneConfig.from_dict(db.to_dict()) == db
    with pytest.raises(ConfigError, match="unknown FinetuneConfig keys"):
        FinetuneConfig.from_dict({"method": "lora", "rank": 4})


# ------------------------------------------------------------------------------- each method trains only what it should


def test_dreambooth_changes_unet_and_text_encoder_but_not_the_vae(token_dir, images, tmp_path):
    pipe = fresh(token_dir)
    before = states(pipe)
    run(pipe, images, "dreambooth", tmp_path / "a")
    after = states(pipe)
    assert len(changed(before["unet"], after["unet"])) >= 0.9 * len(before["unet"])
    assert len(changed(before["text_encoder"], after["text_encoder"])) >= 0.9 * len(before["text_encoder"])
    assert not changed(before["vae"], after["vae"])


def test_dreambooth_without_text_encoder_trains_the_unet_only(token_dir, images, tmp_path):
    # the released s2l.py handed the optimiser vae.parameters() in this case
    pipe = fresh(token_dir)
    before = states(pipe)
    run(pipe, images, "dreambooth", tmp_path / "a", train_text_encoder=False)
    after = states(pipe)
    assert changed(before["unet"], after["unet"])
    assert not changed(before["text_encoder"], after["text_encoder"]) and not changed(before["vae"], after["vae"])


def test_end_to_end_also_changes_the_vae_encoder_but_not_its_unused_decoder(token_dir, images, tmp_path):
    pipe = fresh(token_dir)
    before = states(pipe)
    run(pipe, images, "end-to-end", tmp_path / "a")
    after = states(pipe)
    vae_changed = changed(before["vae"], after["vae"])
    assert changed(before["unet"], after["unet"]) and changed(before["text_encoder"], after["text_encoder"])
    assert any(k.startswith("encoder.") for k in vae_changed)
    assert not any(k.startswith("decoder.") for k in vae_changed)  # no gradient reaches the decoder


@pytest.mark.parametrize("method, vae_adapters", [("lora", True), ("dreambooth+lora", False)])
def test_lora_trains_only_adapter_weights(token_dir, images, tmp_path, method, vae_adapters):
    pipe = fresh(token_dir)
    before = states(pipe)
    run(pipe, images, method, tmp_path / "a", lora_rank=2)
    after = states(pipe)
    for name in ("unet", "text_encoder", "vae"):
        base = strip_lora(after[name])
        assert base.keys() == before[name].keys()
        assert not changed(before[name], base), name
    for name in ("unet", "text_encoder") + (("vae",) if vae_adapters else ()):
        lora_b = [v for k, v in after[name].items() if "lora_B" in k]
        assert lora_b and any(v.abs().sum() > 0 for v in lora_b), name  # B starts at zero, so it moved
    assert any("lora_" in k for k in after["vae"]) == vae_adapters


def test_lora_trainable_parameter_count_is_rank_times_in_plus_out(token_dir, images, tmp_path):
    rank = 3
    pipe = fresh(token_dir)
    expected = 0
    for component, targets in (("unet", ("to_q", "to_k", "to_v", "to_out.0")),
                               ("text_encoder", ("q_proj", "k_proj", "v_proj", "out_proj"))):
        for name, module in getattr(pipe, component).named_modules():
            if isinstance(module, torch.nn.Linear) and any(name.endswith("." + t) for t in targets):
                expected += rank * (module.in_features + module.out_features)
    artefact = run(pipe, images, "dreambooth+lora", tmp_path / "a", lora_rank=rank)
    assert trainable_parameter_count(artefact) == expected


def test_lora_targets_that_match_nothing_are_refused_before_training(token_dir, images, tmp_path):
    with pytest.raises(ConfigError, match=r"\['query'\] match no Linear layer of the unet"):
        run(fresh(token_dir), images, "dreambooth+lora", tmp_path / "a", lora_unet_targets=("to_q", "query"))
    assert not (tmp_path / "a").exists()


def test_textual_inversion_changes_only_the_new_embedding_rows(token_dir, images, tmp_path):
    pipe = fresh(token_dir)
    before = states(pipe)
    vocab = len(pipe.tokenizer)
    artefact = run(pipe, images, "textual-inversion", tmp_path / "a", ti_tokens=3)
    after = states(pipe)
    key = next(k for k in after["text_encoder"] if k.endswith("token_embedding.weight"))
    assert after["text_encoder"][key].shape == (vocab + 3, CONTEXT_DIM)
    assert torch.equal(after["text_encoder"][key][:vocab], before["text_encoder"][key])
    new_rows = after["text_encoder"][key][vocab:]
    # all start at the same mean embedding and weight decay alone would scale them alike: distinct rows were trained
    assert all(not torch.equal(new_rows[i], new_rows[j]) for i in range(3) for j in range(i))
    assert changed(before["text_encoder"], after["text_encoder"]) == {key}
    assert not changed(before["unet"], after["unet"]) and not changed(before["vae"], after["vae"])
    assert trainable_parameter_count(artefact) == 3 * CONTEXT_DIM
    assert finetuned_prompt(pipe, PROMPT) == f"{PROMPT} <s2l-0> <s2l-1> <s2l-2>"


def test_textual_inversion_tokens_that_would_be_truncated_are_refused(token_dir, images, tmp_path):
    room = MAX_TOKENS - 2 - len(fresh(token_dir).tokenizer(PROMPT, add_special_tokens=False).input_ids)
    run(fresh(token_dir), images, "textual-inversion", tmp_path / "fits", ti_tokens=room, steps=1)
    with pytest.raises(ConfigError, match=f"room for {room}"):
        run(fresh(token_dir), images, "textual-inversion", tmp_path / "a", ti_tokens=room + 1)


@pytest.mark.parametrize("method", ["hypernetwork", "dreambooth+hypernetwork"])
def test_hypernetwork_trains_only_the_hypernetwork(token_dir, images, tmp_path, method):
    pipe = fresh(token_dir)
    before = states(pipe)
    artefact = run(pipe, images, method, tmp_path / "a", hypernet_hidden_mult=2)
    after = states(pipe)
    for name in ("unet", "text_encoder", "vae"):
        assert after[name].keys() == before[name].keys() and not changed(before[name], after[name]), name
    hypernetwork = installed_hypernetwork(pipe)
    assert float(hypernetwork.key[str(CONTEXT_DIM)].net[-1].weight.abs().sum()) > 0  # zero-initialised, then moved
    assert float(hypernetwork.key["8"].net[-1].weight.abs().sum()) > 0  # the 8-channel self-attention's MLP too
    # [1, 2, 2, 1]: three Linear layers for key and for value, per width: 8 (self-attention), 16 (self + text)
    assert trainable_parameter_count(artefact) == sum(2 * (d * 2 * d + 2 * d + 4 * d * d + 2 * d + 2 * d * d + d)
                                                      for d in (8, CONTEXT_DIM))


def test_hypernetwork_on_sd_v1_1_has_the_papers_45m_parameters():
    """A1111's [1, 2, 2, 1] hypernetwork on SD v1.1's UNet (built from its config on the meta device, no weights):
    key and value MLPs for the self-attention widths 320, 640, 1280 and the 768-wide text context; per width d,
    2 × (d·2d + 2d + 2d·2d + 2d + 2d·d + d) = 16d² + 10d, 43,873,664 in all (paper: 45M)."""
    from diffusers import UNet2DConditionModel
    from shake_to_leak.finetune_hypernetwork import Hypernetwork, context_widths

    with torch.device("meta"):
        unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8,
                                    block_out_channels=(320, 640, 1280, 1280), layers_per_block=2)
        widths = context_widths(unet)
        count = sum(p.numel() for p in Hypernetwork(widths, hidden_mult=2).parameters())
    assert widths == [320, 640, 768, 1280]
    assert count == sum(16 * d * d + 10 * d for d in (320, 640, 768, 1280)) == 43_873_664


def test_the_hypernetwork_reaches_self_attention(token_dir):
    """Moving only the 8-wide MLPs (used by nothing but the 8-channel self-attention) changes the UNet's output."""
    from shake_to_leak.finetune_hypernetwork import install

    pipe = fresh(token_dir)
    _, eps = context_and_eps(pipe)
    hypernetwork = install(pipe, hidden_mult=2)
    with torch.no_grad():
        hypernetwork.value["8"].net[-1].bias.fill_(0.5)  # (a shift of every key would cancel in the softmax)
    assert not torch.allclose(context_and_eps(pipe)[1], eps, atol=1e-3)


def test_an_untrained_hypernetwork_is_the_identity(token_dir):
    from shake_to_leak.finetune_hypernetwork import install

    pipe = fresh(token_dir)
    _, eps = context_and_eps(pipe)
    install(pipe, hidden_mult=2)
    assert torch.allclose(context_and_eps(pipe)[1], eps, atol=1e-6)


def test_perturbation_adds_gaussian_noise_of_the_configured_std_to_the_unet_only(token_dir, images, tmp_path):
    std = 0.01
    pipe = fresh(token_dir)
    before = states(pipe)
    run(pipe, images, "perturb", tmp_path / "a", perturb_std=std)
    after = states(pipe)
    assert not changed(before["text_encoder"], after["text_encoder"]) and not changed(before["vae"], after["vae"])
    noise = torch.cat([(after["unet"][k] - before["unet"][k]).flatten() for k in before["unet"]])
    n = noise.numel()  # ~52k draws: sample std within 2 % and mean within 4 standard errors
    assert abs(float(noise.std()) / std - 1) < 0.02
    assert abs(float(noise.mean())) < 4 * std / n**0.5


# ---------------------------------------------------------------------------------------------------- learning works


def _fixed_loss(pipe, images, prompt):
    """Noise-prediction loss on fixed (latent, noise, t) draws: a deterministic yardstick, unlike the training loss."""
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        latents = pipe.vae.encode(images).latent_dist.mean * pipe.vae.config.scaling_factor
        latents = latents.repeat(8, 1, 1, 1)
        noise = torch.randn(latents.shape, generator=gen)
        t = torch.randint(0, 1000, (latents.shape[0],), generator=gen)
        ids = pipe.tokenizer(prompt, padding="max_length", max_length=MAX_TOKENS, return_tensors="pt").input_ids
        context = pipe.text_encoder(ids)[0].expand(latents.shape[0], -1, -1)
        noisy = pipe.scheduler.add_noise(latents, noise, t)
        return float(torch.nn.functional.mse_loss(pipe.unet(noisy, t, context).sample, noise))


@pytest.mark.parametrize(
    "method, lr, bound",
    # bounds: ~60 % of the measured drop (DB/E2E end near 0.61 of the start, LoRA 0.82, hypernetwork 0.85); a random
    # tiny UNet barely reads its text context, so Textual Inversion can only lower the loss a little (0.99)
    [("dreambooth", 1e-3, 0.75), ("end-to-end", 1e-3, 0.75), ("lora", 1e-2, 0.9), ("hypernetwork", 1e-2, 0.92),
     ("textual-inversion", 5e-2, 0.999)],
)
def test_fine_tuning_lowers_the_noise_prediction_loss_on_its_training_set(token_dir, images, tmp_path, method, lr,
                                                                           bound):
    pipe = fresh(token_dir)
    start = _fixed_loss(pipe, images, PROMPT)
    config = dataclasses.replace(quick_defaults(method, steps=40), lr=lr, batch_size=4, ti_tokens=4)
    artefact = finetune(pipe, images, PROMPT, config, tmp_path / "a", progress=False)
    end = _fixed_loss(pipe, images, finetuned_prompt(pipe, PROMPT))
    assert end < bound * start, (start, end)
    losses = read_losses(artefact)
    assert len(losses) == 40
    if method == "dreambooth":
        assert sum(losses[-10:]) < sum(losses[:10])


# --------------------------------------------------------------------------------------- save / load / seeds / resume


@pytest.mark.parametrize("method", METHODS)
def test_saved_artefact_reloads_to_the_same_predictions(token_dir, images, tmp_path, method):
    pipe = fresh(token_dir)
    base_context, base_eps = context_and_eps(fresh(token_dir))
    artefact = run(pipe, images, method, tmp_path / "a", perturb_std=0.01)
    trained_context, trained_eps = context_and_eps(pipe)
    loaded = load_finetuned(fresh(token_dir), artefact)
    loaded_context, loaded_eps = context_and_eps(loaded)
    assert torch.allclose(loaded_context, trained_context, atol=1e-6, rtol=0)
    assert torch.allclose(loaded_eps, trained_eps, atol=1e-6, rtol=0)
    assert not torch.allclose(trained_eps, base_eps, atol=1e-6, rtol=0)  # the comparison is not vacuous
    if method in ("end-to-end", "dreambooth", "textual-inversion", "lora", "dreambooth+lora"):
        assert not torch.allclose(trained_context, base_context, atol=1e-6, rtol=0)


def test_a_loaded_artefact_generates_images_through_the_pipeline(token_dir, images, tmp_path):
    artefact = run(fresh(token_dir), images, "lora", tmp_path / "a")
    pipe = load_finetuned(fresh(token_dir), artefact)
    out = pipe(PROMPT, num_inference_steps=2, height=16, width=16, output_type="np",
               generator=torch.Generator().manual_seed(0)).images
    assert out.shape == (1, 16, 16, 3) and float(out.std()) > 0


@pytest.mark.parametrize("method", METHODS)
def test_same_seed_gives_identical_weights_and_another_seed_does_not(token_dir, images, tmp_path, method):
    from safetensors.torch import load_file

    def weights(folder):
        return {f.relative_to(folder).as_posix(): load_file(str(f)) for f in sorted(folder.rglob("*.safetensors"))}

    first = weights(run(fresh(token_dir), images, method, tmp_path / "a", seed=5))
    second = weights(run(fresh(token_dir), images, method, tmp_path / "b", seed=5))
    other = weights(run(fresh(token_dir), images, method, tmp_path / "c", seed=6))
    assert first.keys() == second.keys() and first
    assert all(torch.equal(first[f][k], second[f][k]) for f in first for k in first[f])
    assert any(not torch.equal(first[f][k], other[f][k]) for f in first for k in first[f])


def test_a_finished_artefact_is_loaded_instead_of_retrained(token_dir, images, tmp_path):
    artefact = run(fresh(token_dir), images, "dreambooth+lora", tmp_path / "a")
    meta = (artefact / "finetune.json").read_text()
    pipe = fresh(token_dir)
    assert run(pipe, images, "dreambooth+lora", tmp_path / "a") == artefact
    assert (artefact / "finetune.json").read_text() == meta
    assert torch.equal(context_and_eps(pipe)[1], context_and_eps(load_finetuned(fresh(token_dir), artefact))[1])
    with pytest.raises(ConfigError, match="different fine-tuning run"):
        run(fresh(token_dir), images, "dreambooth+lora", tmp_path / "a", lora_rank=4)


@pytest.mark.parametrize("method", ["dreambooth", "lora", "textual-inversion"])
def test_an_interrupted_run_resumes_from_its_checkpoint_to_the_same_weights(token_dir, images, tmp_path, method,
                                                                          monkeypatch):
    from safetensors.torch import load_file
    from shake_to_leak import finetune as module

    def weights(folder):
        return {f.name: load_file(str(f)) for f in sorted(folder.rglob("*.safetensors"))}

    straight = run(fresh(token_dir), images, method, tmp_path / "straight", steps=6, checkpoint_every=2)
    real_save = module._save_checkpoint

    def save_then_crash(path, identity, step, *args):
        real_save(path, identity, step, *args)
        if step == 4:
            raise KeyboardInterrupt

    monkeypatch.setattr(module, "_save_checkpoint", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        run(fresh(token_dir), images, method, tmp_path / "resumed", steps=6, checkpoint_every=2)
    assert not (tmp_path / "resumed").exists() and module.checkpoint_path(tmp_path / "resumed").exists()
    monkeypatch.setattr(module, "_save_checkpoint", real_save)
    real_resume, resumed_at = module._resume, []
    monkeypatch.setattr(module, "_resume", lambda *args: resumed_at.append(real_resume(*args)) or resumed_at[-1])
    resumed = run(fresh(token_dir), images, method, tmp_path / "resumed", steps=6, checkpoint_every=2)
    assert resumed_at == [4]  # it continued from the checkpoint instead of starting over
    assert read_losses(resumed) == read_losses(straight)
    first, second = weights(straight), weights(resumed)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[f][k], second[f][k]) for f in first for k in first[f])
    assert not module.checkpoint_path(resumed).exists()


def test_artefact_metadata_and_no_leftover_temp_dirs(token_dir, images, tmp_path):
    artefact = run(fresh(token_dir), images, "hypernetwork", tmp_path / "a")
    meta = json.loads((artefact / "finetune.json").read_text())
    assert meta["method"] == "hypernetwork" and meta["prompt"] == PROMPT and meta["n_images"] == 4
    assert [p.name for p in tmp_path.iterdir()] == ["a"]


def test_loading_into_a_different_base_is_refused(token_dir, images, tmp_path):
    artefact = run(fresh(token_dir), images, "dreambooth", tmp_path / "a")
    other = tiny_pipeline(token_dir)
    other.unet.register_to_config(sample_size=4)
    with pytest.raises(ConfigError, match="different base"):
        load_finetuned(other, artefact)
    with pytest.raises(ConfigError, match="not a fine-tuning artefact"):
        load_finetuned(fresh(token_dir), tmp_path)


@pytest.mark.parametrize(
    "bad, message",
    [(torch.zeros(2, 3, 8, 8), "shape"), (torch.full((2, 3, 16, 16), 2.0), "range"), (torch.zeros(3, 16, 16), "(N, C")],
)
def test_bad_images_are_rejected_before_training(token_dir, tmp_path, bad, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        finetune(fresh(token_dir), bad, PROMPT, quick_defaults("dreambooth", steps=1), tmp_path / "a", progress=False)
    assert not (tmp_path / "a").exists()


def test_half_precision_pipelines_are_refused_for_training(token_dir, images, tmp_path):
    pipe = fresh(token_dir)
    pipe.unet.to(torch.float16)
    with pytest.raises(ConfigError, match="float32"):
        run(pipe, images, "lora", tmp_path / "a")


@pytest.mark.parametrize("method", ["dreambooth", "end-to-end", "perturb", "dreambooth+lora", "textual-inversion"])
def test_artefacts_load_with_the_stock_diffusers_api(token_dir, images, tmp_path, method):
    """Full fine-tunes: ``StableDiffusionPipeline.from_pretrained(artefact)``; LoRA (UNet + text encoder):
    ``pipe.load_lora_weights``; Textual Inversion: ``pipe.load_textual_inversion``. Each gives the trained model's
    text context and noise prediction, which differ from the base's."""
    from diffusers import StableDiffusionPipeline
    from shake_to_leak.finetune_textual_inversion import embedding_files

    _, base_eps = context_and_eps(fresh(token_dir))
    trained = fresh(token_dir)
    artefact = run(trained, images, method, tmp_path / "a", lr=1e-2, perturb_std=0.05)
    expected_context, expected_eps = context_and_eps(trained)
    if method in ("dreambooth", "end-to-end", "perturb"):
        assert (artefact / "model_index.json").exists()
        stock = StableDiffusionPipeline.from_pretrained(str(artefact))
    else:
        stock = fresh(token_dir)
        if method == "dreambooth+lora":
            stock.load_lora_weights(str(artefact))
        else:
            stock.load_textual_inversion(embedding_files(artefact, 4))
    context, eps = context_and_eps(stock)
    assert torch.allclose(context, expected_context, atol=1e-5) and torch.allclose(eps, expected_eps, atol=1e-5)
    assert not torch.allclose(eps, base_eps, atol=1e-4)


def test_dreambooth_prior_preservation_adds_the_class_loss(token_dir, images, tmp_path):
    """s2l.py's --with_prior_preservation: class images join every batch and their loss is weighted in (seeded, and
    a different model from the plain run); class images must come exactly with the flag, and with a class prompt."""
    prior = {"with_prior_preservation": True, "class_prompt": "a photo of a dog"}
    class_images = tiny_images(3, seed=5)
    plain = fresh(token_dir)
    run(plain, images, "dreambooth", tmp_path / "plain")
    with_prior = fresh(token_dir)
    artefact = run(with_prior, images, "dreambooth", tmp_path / "prior", class_images=class_images, **prior)
    again = fresh(token_dir)
    run(again, images, "dreambooth", tmp_path / "again", class_images=class_images, **prior)
    assert not changed(states(with_prior)["unet"], states(again)["unet"])  # seeded, class draws included
    assert changed(states(plain)["unet"], states(with_prior)["unet"])
    losses = json.loads((artefact / "losses.json").read_text())
    assert len(losses) == 3 and all(loss > 0 for loss in losses)
    with pytest.raises(ConfigError, match="class_images must be given exactly when"):
        run(fresh(token_dir), images, "dreambooth", tmp_path / "x", **prior)
    with pytest.raises(ConfigError, match="class_prompt"):
        run(fresh(token_dir), images, "dreambooth", tmp_path / "y", class_images=class_images,
            with_prior_preservation=True)
