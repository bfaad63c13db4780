"""MeZO's scoring of multiple-choice prompts: option log-likelihoods, losses, argmax prediction.

Each example becomes one sequence per option (prompt + sep + option). The score of an
option is the mean log-likelihood of its tokens (length-normalised, as MeZO); the
prediction is the best-scoring option. Two training losses, as MeZO's two modes:
``classification`` is cross-entropy over the option scores (every option is a sequence
in the batch); ``option-lm`` is the teacher-forced LM loss on the gold option's tokens,
averaged over all those tokens in the batch (only the gold sequence is in the batch).
Sequences are left-padded so every option ends at the last position, which lets the
model compute logits for the last few positions only (``logits_to_keep``) instead of
the whole sequence: the same for every method, and the vocabulary projection over the
full prompt is most of the activation memory for short options.
``OptionScoring`` is this module as a cell's ``Scoring`` (zobench.api), metric ``accuracy``.
Usage: ``batch = collate(encode(tokenizer, examples, 256), pad_id)``; ``option_scores(model, batch)``;
``train_batch_examples(encoded, "option-lm")`` for what a training batch holds.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Sequence

import torch
import torch.nn.functional as F

from zobench.api import loss_in_model_dtype, losses_in_model_dtype  # noqa: F401 (kept importable from here)
from zobench.api import Task
from zobench.tasks import Example, RandomTokens


def loss_precision(logits: torch.Tensor) -> torch.Tensor:
    """fp32 logits for the loss, or the model's own dtype inside ``loss_in_model_dtype`` (zobench.api)."""
    return logits if losses_in_model_dtype() else logits.float()


@dataclasses.dataclass(frozen=True)
class EncodedExample:
    sequences: tuple[tuple[int, ...], ...]  # one token-id sequence per option
    option_lengths: tuple[int, ...]  # how many trailing tokens of each sequence are the option
    label: int
    correct: tuple[int, ...]  # options that count as a correct prediction (label, plus ReCoRD's other golds)


@dataclasses.dataclass
class Batch:
    input_ids: torch.Tensor  # (examples·options, length), left-padded
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    option_mask: torch.Tensor  # (examples·options, keep-1): which predicted tokens are option tokens
    labels: torch.Tensor  # (examples,)
    n_options: int
    keep: int  # logits_to_keep

    def to(self, device: torch.device | str) -> "Batch":
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return Batch(**{k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in fields.items()})

    @property
    def n_tokens(self) -> int:
        return int(self.attention_mask.sum())


def pad_id_of(tokenizer) -> int:
    """The tokenizer's padding id; 0 for tokenizers without one (Llama's): padding is masked out anyway."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0


def special_prefix(tokenizer) -> list[int]:
    """The ids a tokenizer puts before text (Llama's BOS), found by comparing encodings."""
    with_special = tokenizer("a").input_ids
    plain = tokenizer("a", add_special_tokens=False).input_ids
    for start in range(len(with_special) - len(plain) + 1):
        if with_special[start : start + len(plain)] == plain:
            return list(with_special[:start])
    return []


def content_ids(tokenizer) -> list[int]:
    """Every id the tokenizer gives text, without special tokens (BOS, padding, sentinels)."""
    special = set(tokenizer.all_special_ids)
    return [i for i in range(len(tokenizer)) if i not in special]


def encode_random(example: Example, prefix: list[int], vocabulary: list[int], max_length: int) -> EncodedExample:
    """A ``RandomTokens`` example: prefix + random prompt ids + one random token per option,
    exactly ``length`` tokens, never truncated (a shorter sequence would misstate the benchmark)."""
    spec = example.prompt
    n_prompt = spec.length - len(prefix) - 1
    if n_prompt < 1:
        raise ValueError(f"RandomTokens length {spec.length} leaves no room for a prompt after "
                         f"{len(prefix)} prefix token(s) and the option")
    if spec.length > max_length:
        raise ValueError(f"RandomTokens length {spec.length} exceeds max_length {max_length}; raise max_length")
    gen = torch.Generator().manual_seed(spec.seed)
    picks = torch.randint(len(vocabulary), (n_prompt + len(example.options),), generator=gen).tolist()
    ids = [vocabulary[i] for i in picks]
    prompt, options = ids[:n_prompt], ids[n_prompt:]
    sequences = tuple(tuple(prefix + prompt + [option]) for option in options)
    return EncodedExample(sequences, (1,) * len(options), example.label, example.correct)


def encode(tokenizer, examples: Sequence[Example], max_length: int) -> list[EncodedExample]:
    """Tokenize prompt+sep+option once per option; left-truncate to ``max_length`` tokens.

    As MeZO's ``encode_prompt``: the option's tokens are the verbalised sequence's tokens
    beyond the prompt's, and truncation drops the start of the text but keeps the BOS.
    """
    prefix = special_prefix(tokenizer)
    budget = max(1, max_length - len(prefix))
    vocabulary = None
    out = []
    for ex in examples:
        if isinstance(ex.prompt, RandomTokens):
            vocabulary = vocabulary if vocabulary is not None else content_ids(tokenizer)
            out.append(encode_random(ex, prefix, vocabulary, max_length))
            continue
        prompt_ids = tokenizer(ex.prompt, add_special_tokens=False).input_ids
        seqs, lengths = [], []
        for option in ex.options:
            full = tokenizer(f"{ex.prompt}{ex.sep}{option}", add_special_tokens=False).input_ids
            n_option = max(1, len(full) - len(prompt_ids))
            ids = prefix + full[-budget:]  # keep the option; drop the start of long prompts
            seqs.append(tuple(ids))
            lengths.append(min(n_option, len(ids) - 1))
        out.append(EncodedExample(tuple(seqs), tuple(lengths), ex.label, ex.correct))
    return out


def gold_only(examples: Sequence[EncodedExample]) -> list[EncodedExample]:
    """Each example reduced to its gold option's sequence: what an option-lm batch holds."""
    return [EncodedExample((e.sequences[e.label],), (e.option_lengths[e.label],), 0, (0,)) for e in examples]


def train_batch_examples(examples: Sequence[EncodedExample], train_loss: str) -> list[EncodedExample]:
    """MeZO feeds every option for classification, and only the gold one for option-lm."""
    return gold_only(examples) if train_loss == "option-lm" else list(examples)


def collate(examples: Sequence[EncodedExample], pad_id: int) -> Batch:
    n_options = len(examples[0].sequences)
    if any(len(e.sequences) != n_options for e in examples):
        raise ValueError("all examples in a batch must have the same number of options")
    seqs = [s for e in examples for s in e.sequences]
    lengths = [n for e in examples for n in e.option_lengths]
    width = max(len(s) for s in seqs)
    keep = max(lengths) + 1
    input_ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(seqs), width), dtype=torch.long)
    option_mask = torch.zeros((len(seqs), keep - 1), dtype=torch.bool)
    for i, (s, n) in enumerate(zip(seqs, lengths)):
        input_ids[i, width - len(s) :] = torch.tensor(s)
        attention_mask[i, width - len(s) :] = 1
        option_mask[i, keep - 1 - n :] = True
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    labels = torch.tensor([e.label for e in examples])
    return Batch(input_ids, attention_mask, position_ids, option_mask, labels, n_options, keep)


def option_logprobs(model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of the option tokens' log-probabilities, number of option tokens) per sequence, in fp32
    (in the model's dtype inside ``loss_in_model_dtype``)."""
    kwargs = dict(input_ids=batch.input_ids, attention_mask=batch.attention_mask, position_ids=batch.position_ids)
    accepted = inspect.signature(model.forward).parameters
    if "logits_to_keep" in accepted:
        kwargs["logits_to_keep"] = batch.keep
    if "use_cache" in accepted:
        # Scoring never decodes, but causal LMs build a KV cache by default: every layer's
        # K and V kept to the end of the forward (8 GiB for Llama-2-7B at 32 × 512 tokens),
        # which would inflate the floor's and every ZO method's peak memory.
        kwargs["use_cache"] = False
    logits = model(**kwargs).logits[:, -batch.keep :]
    targets = batch.input_ids[:, -batch.keep + 1 :]
    logprobs = torch.log_softmax(loss_precision(logits[:, :-1]), dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    mask = batch.option_mask.to(logprobs.dtype)
    return (logprobs * mask).sum(-1), mask.sum(-1)


def option_scores(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """Mean log-likelihood of each option's tokens, shape (examples, options), in fp32."""
    sums, counts = option_logprobs(model, batch)
    return (sums / counts).view(-1, batch.n_options)


def classification_loss(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """MeZO's train_as_classification loss: CE over the length-normalised option scores."""
    return F.cross_entropy(option_scores(model, batch), batch.labels)


def option_lm_loss(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """MeZO's loss without train_as_classification: token-level CE on the option tokens of
    the batch's sequences (the gold options, see ``gold_only``), averaged over all of them."""
    sums, counts = option_logprobs(model, batch)
    return -sums.sum() / counts.sum()


TRAIN_LOSS_FUNCTIONS = {"classification": classification_loss, "option-lm": option_lm_loss}


@torch.no_grad()
def evaluate(model: torch.nn.Module, examples: Sequence[EncodedExample], pad_id: int, device,
             batch_sequences: int, train_loss: str = "classification") -> tuple[float, float]:
    """(accuracy, mean loss) over ``examples``: the best-scoring option is correct if it is
    one of the example's correct options. The loss is the task's training loss.

    Sequences are scored ``batch_sequences`` at a time regardless of which example they
    belong to, so examples with different numbers of options (ReCoRD) batch together.
    """
    if not examples:
        return float("nan"), float("nan")
    flat = [EncodedExample((s,), (n,), 0, (0,)) for e in examples for s, n in zip(e.sequences, e.option_lengths)]
    # Batches of similar lengths waste little on padding (prompts vary 10-fold in length);
    # the scores go back to the examples' order below.
    order = sorted(range(len(flat)), key=lambda i: len(flat[i].sequences[0]))
    was_training = model.training
    model.eval()
    all_sums, all_counts = torch.empty(len(flat)), torch.empty(len(flat))
    for start in range(0, len(flat), batch_sequences):
        chunk = order[start : start + batch_sequences]
        s, c = option_logprobs(model, collate([flat[i] for i in chunk], pad_id).to(device))
        all_sums[chunk], all_counts[chunk] = s.cpu(), c.cpu()
    model.train(was_training)
    correct, ce_sum, gold_sum, gold_tokens, at = 0, 0.0, 0.0, 0.0, 0
    for e in examples:
        n = len(e.sequences)
        scores = all_sums[at : at + n] / all_counts[at : at + n]
        correct += int(int(scores.argmax()) in e.correct)
        ce_sum += float(F.cross_entropy(scores.unsqueeze(0), torch.tensor([e.label])))
        gold_sum += float(all_sums[at + e.label])
        gold_tokens += float(all_counts[at + e.label])
        at += n
    loss = -gold_sum / gold_tokens if train_loss == "option-lm" else ce_sum / len(examples)
    return correct / len(examples), loss


def accuracy(model: torch.nn.Module, examples: Sequence[EncodedExample], pad_id: int, device, batch_sequences: int) -> float:
    return evaluate(model, examples, pad_id, device, batch_sequences)[0]


class OptionScoring:
    """MeZO's multiple-choice scoring as a cell's ``Scoring``: metric ``accuracy`` (the best option);
    the task's ``train_loss`` trains and is the evaluation loss."""

    def __init__(self, task: Task, tokenizer, device):
        if task.train_loss not in TRAIN_LOSS_FUNCTIONS:
            raise ValueError(f"task {task.name}: unknown train_loss {task.train_loss!r}; "
                             f"valid: {', '.join(TRAIN_LOSS_FUNCTIONS)}")
        self.train_loss = task.train_loss
        self.tokenizer, self.device, self.pad_id = tokenizer, device, pad_id_of(tokenizer)

    def encode(self, examples: Sequence[Example], max_length: int) -> list[EncodedExample]:
        return encode(self.tokenizer, examples, max_length)

    def train_examples(self, encoded: list[EncodedExample]) -> list[EncodedExample]:
        return train_batch_examples(encoded, self.train_loss)

    def collate(self, encoded: Sequence[EncodedExample]) -> Batch:
        return collate(encoded, self.pad_id)

    def loss(self, model: torch.nn.Module, batch: Batch) -> torch.Tensor:
        return TRAIN_LOSS_FUNCTIONS[self.train_loss](model, batch)

    def evaluate(self, model: torch.nn.Module, encoded: Sequence[EncodedExample], batch_size: int) -> dict[str, float]:
        accuracy, loss = evaluate(model, encoded, self.pad_id, self.device, batch_size, self.train_loss)
        return {"accuracy": accuracy, "loss": loss}
