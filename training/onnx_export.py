"""ONNX Runtime backends of a model artifact, built from the trained weights at export time.

The TF SavedModel stays the artifact's source of truth. From the same weights this module writes

- ``model.onnx``: the classifier as an ONNX graph of ONNX Runtime's fused BERT operators
  (``EmbedLayerNormalization``, ``Attention``, ``BiasGelu``), fp32; each residual is an ``Add``
  and a standard ``LayerNormalization``, which ONNX Runtime's CPU kernels run faster than its fused
  ``SkipLayerNormalization`` (so CPU sessions keep that fusion off: see
  ``sentiment_core.scorer``);
- ``model.int8.onnx``: the same graph with dynamically quantized int8 weights (MatMul, Attention)
  and the tanh approximation of GELU (``FastGelu``), ~5% faster and within int8's own error,
- ``model.fp16.onnx``: the same graph, with ``SkipLayerNormalization`` (the CUDA provider's
  fused kernel), with the encoder in float16 (weights and activations; the
  pooling and head stay float32, as in mixed-precision training): the GPU backend (ONNX Runtime's
  CUDA provider, tensor cores); it also runs, slowly, on CPU, where it is checked,

and verifies each against the SavedModel on real rows before recording it in ``metadata.json``
under ``backends`` (file, sha256, rows checked, max |diff|, label agreement). A backend that fails
its check is not recorded (scoring then uses TensorFlow) and the reason is.

The graph is written directly from the weights (not traced from TF): tf2onnx's trace of the
Keras model has no fused attention and runs slower than TF itself on CPU.

    python -m training.onnx_export --model ARTIFACT [--check-data FILE]

adds the backends to an artifact exported before they existed (files are added, nothing existing
changes; the model version stays, since the weights are the same).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

log = logging.getLogger(__name__)

ONNX_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
FP16_FILE = "model.fp16.onnx"
OPSET = 17
MS = "com.microsoft"
FP32_TOLERANCE = 1e-4      # max |score diff| vs the SavedModel for the fp32 graph
CHECK_ROWS = 1024          # rows of --check-data the backends are checked (and measured) on
FP16_TOLERANCE = 1e-2      # max |score diff| vs the SavedModel for the fp16 encoder (measured ~1e-3)
INT8_MIN_AGREEMENT = 0.95  # sanity: share of labels int8 must share with the SavedModel (a broken graph
                           # scores near chance); its test metrics are recorded for the user to judge


def bert_weights(variables) -> dict[str, np.ndarray]:
    """{name below 'bert/' or 'head/': array} from TF variables (in-memory Keras model or a
    restored SavedModel; prefixes such as 'tf_bert_model_1/' are dropped)."""
    out = {}
    for v in variables:
        name = v.name.split(":")[0]
        for anchor in ("bert/", "head/"):
            i = name.find(anchor)
            if i >= 0 and (i == 0 or name[i - 1] == "/"):
                key = name[i:] if anchor == "head/" else name[i + len(anchor):]
                out[key] = np.asarray(v.numpy(), dtype=np.float32)
                break
    return out


def build_graph(w: Mapping[str, np.ndarray], num_heads: int, pooling: str, layer_norm_eps: float = 1e-12,
                skip_layer_norm: bool = False):
    """The classifier as an ONNX ModelProto: int32 input_ids/attention_mask [batch, seq] ->
    probabilities [batch, n_labels], score [batch] (probability of the last label).

    Each residual block ends in ``LayerNormalization(x + dense(h) + bias)``: ONNX Runtime's fused
    ``SkipLayerNormalization`` with ``skip_layer_norm`` (for its CUDA kernels), else an ``Add`` of the
    dense output and its bias, an ``Add`` of the residual and a standard ``LayerNormalization``:
    on CPU 4% (fp32) and 7% (int8) more tweets/s when the session does not re-fuse them (one
    thread, the v1.1 minute file; ORT 1.32), as its fused kernel is the slower of the two."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []

    def const(name, arr, dtype=np.float32):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(np.asarray(arr, dtype=dtype)), name))
        return name

    def node(op, inputs, outputs, domain="", **attrs):
        nodes.append(helper.make_node(op, inputs, outputs, name=outputs[0], domain=domain or None, **attrs))
        return outputs[0]

    ax1 = const("ax1", [1], np.int64)

    def residual_norm(out, h, residual, bias, gamma, beta):
        """LayerNorm(h + bias + residual), named ``out`` (and ``out_*`` for its parts)."""
        g, b, bias = const(out + "_g", gamma), const(out + "_b", beta), const(out + "_bias", bias)
        if skip_layer_norm:
            return node("SkipLayerNormalization", [h, residual, g, b, bias], [out], domain=MS, epsilon=layer_norm_eps)
        s = node("Add", [node("Add", [h, bias], [out + "_hb"]), residual], [out + "_sum"])
        return node("LayerNormalization", [s, g, b], [out], axis=-1, epsilon=layer_norm_eps)

    hidden = w["embeddings/word_embeddings/weight"].shape[1]
    if hidden % num_heads:
        raise ValueError(f"hidden size {hidden} is not a multiple of {num_heads} heads")
    # Token types are all 0 in single-sentence scoring: fold type 0 into the position table.
    pos = w["embeddings/position_embeddings/embeddings"] + w["embeddings/token_type_embeddings/embeddings"][0]
    x, mask_index = "emb", "mask_index"
    node("EmbedLayerNormalization",
         ["input_ids", "", const("word_emb", w["embeddings/word_embeddings/weight"]), const("pos_emb", pos), "",
          const("emb_ln_g", w["embeddings/LayerNorm/gamma"]), const("emb_ln_b", w["embeddings/LayerNorm/beta"]),
          "attention_mask"],
         [x, mask_index], domain=MS, epsilon=layer_norm_eps)
    n_layers = 1 + max(int(k.split("/")[1].rsplit("_", 1)[-1]) for k in w if k.startswith("encoder/layer_._"))
    for i in range(n_layers):
        p = f"encoder/layer_._{i}/"
        qkv_w = np.concatenate([w[p + f"attention/self/{n}/kernel"] for n in ("query", "key", "value")], axis=1)
        qkv_b = np.concatenate([w[p + f"attention/self/{n}/bias"] for n in ("query", "key", "value")])
        att = node("Attention", [x, const(f"l{i}_qkv_w", qkv_w), const(f"l{i}_qkv_b", qkv_b), mask_index],
                   [f"l{i}_att"], domain=MS, num_heads=num_heads)
        proj = node("MatMul", [att, const(f"l{i}_ao_w", w[p + "attention/output/dense/kernel"])], [f"l{i}_ao"])
        x1 = residual_norm(f"l{i}_x1", proj, x, w[p + "attention/output/dense/bias"],
                           w[p + "attention/output/LayerNorm/gamma"], w[p + "attention/output/LayerNorm/beta"])
        h = node("MatMul", [x1, const(f"l{i}_ff1_w", w[p + "intermediate/dense/kernel"])], [f"l{i}_ff1"])
        h = node("BiasGelu", [h, const(f"l{i}_ff1_b", w[p + "intermediate/dense/bias"])], [f"l{i}_gelu"], domain=MS)
        h = node("MatMul", [h, const(f"l{i}_ff2_w", w[p + "output/dense/kernel"])], [f"l{i}_ff2"])
        x = residual_norm(f"l{i}_out", h, x1, w[p + "output/dense/bias"],
                          w[p + "output/LayerNorm/gamma"], w[p + "output/LayerNorm/beta"])

    if pooling == "mean":  # sum(h * m) / max(sum(m), 1e-6), as training.model._masked_mean
        m = node("Cast", [node("Unsqueeze", ["attention_mask", const("ax2", [2], np.int64)], ["mask3"])],
                 ["maskf"], to=TensorProto.FLOAT)
        s = node("ReduceSum", [node("Mul", [x, m], ["hm"]), ax1], ["hsum"], keepdims=0)
        n = node("Max", [node("ReduceSum", [m, ax1], ["msum"], keepdims=0), const("eps", 1e-6)], ["mden"])
        pooled = node("Div", [s, n], ["pooled"])
    else:
        cls = node("Gather", [x, const("zero", 0, np.int64)], ["cls"], axis=1)
        if pooling == "cls":
            pooled = cls
        elif pooling == "pooled":
            d = node("Add", [node("MatMul", [cls, const("pool_w", w["pooler/dense/kernel"])], ["pool_mm"]),
                             const("pool_b", w["pooler/dense/bias"])], ["pool_d"])
            pooled = node("Tanh", [d], ["pooled"])
        else:
            raise ValueError(f"unknown pooling {pooling!r}")
    logits = node("Add", [node("MatMul", [pooled, const("head_w", w["head/kernel"])], ["head_mm"]),
                          const("head_b", w["head/bias"])], ["logits"])
    n_out = w["head/kernel"].shape[1]
    if n_out == 1:
        p = node("Sigmoid", [logits], ["p_pos"])
        node("Concat", [node("Sub", [const("one", 1.0), p], ["p_neg"]), p], ["probabilities"], axis=1)
        node("Squeeze", [p, ax1], ["score"])
    else:
        probs = node("Softmax", [logits], ["probabilities"], axis=1)
        last = node("Slice", [probs, const("s0", [n_out - 1], np.int64), const("s1", [n_out], np.int64), ax1], ["p_last"])
        node("Squeeze", [last, ax1], ["score"])

    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT32, ["batch", "seq"])
    mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT32, ["batch", "seq"])
    outs = [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", max(2, n_out)]),
            helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch"])]
    graph = helper.make_graph(nodes, "tweet_sentiment", [ids, mask], outs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MS, 1)],
                              producer_name="tweet-sentiment")
    model.ir_version = min(model.ir_version, 10)
    onnx.checker.check_model(model)
    return model


def write_backends(out_dir: Path, weights: Mapping[str, np.ndarray], num_heads: int, pooling: str,
                   reference: Callable[[Sequence[str]], np.ndarray], check_texts: Sequence[str],
                   layer_norm_eps: float = 1e-12, evaluate: Callable[[str, object, np.ndarray], dict] | None = None) -> dict:
    """Write model.onnx, model.int8.onnx and model.fp16.onnx into ``out_dir`` (an artifact, complete but for
    them), check each against ``reference`` (texts -> probabilities from the SavedModel) on
    ``check_texts``, and return the ``backends`` metadata. Failed backends are removed.
    ``evaluate(name, scorer, check_probs) -> dict`` adds to each kept backend's entry (e.g. its test
    metrics), with the scorer loaded for the check and its probabilities on ``check_texts``."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from sentiment_core.artifact import file_sha256
    from sentiment_core.scorer import Scorer

    out_dir = Path(out_dir)
    result: dict = {}
    t0 = time.perf_counter()
    try:
        graph = build_graph(weights, num_heads, pooling, layer_norm_eps)
        onnx.save(graph, str(out_dir / ONNX_FILE))
        quantize_dynamic(_fast_gelu(graph), str(out_dir / INT8_FILE), weight_type=QuantType.QInt8,
                         per_channel=True, op_types_to_quantize=["MatMul", "Attention"],
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        onnx.save(fp16_encoder(build_graph(weights, num_heads, pooling, layer_norm_eps, skip_layer_norm=True)),
                  str(out_dir / FP16_FILE))
    except Exception as e:  # noqa: BLE001 - the TF backend still serves; say why ONNX is absent
        log.warning("ONNX export failed, the artifact will score with TensorFlow only: %s", e)
        for f in (ONNX_FILE, INT8_FILE, FP16_FILE):
            (out_dir / f).unlink(missing_ok=True)
        return {"onnx_error": f"{type(e).__name__}: {e}"}
    build_s = time.perf_counter() - t0
    ref = np.asarray(reference(check_texts), dtype=np.float32)
    labels_ref = ref.argmax(axis=1)
    for name, fname in (("onnx", ONNX_FILE), ("onnx-int8", INT8_FILE), ("onnx-fp16", FP16_FILE)):
        scorer = Scorer(str(out_dir), backend=name, _unchecked=True)
        got = scorer.predict_proba(check_texts)
        diff = float(np.max(np.abs(got - ref))) if len(ref) else 0.0
        agree = float(np.mean(got.argmax(axis=1) == labels_ref)) if len(ref) else 1.0
        ok = {"onnx": diff <= FP32_TOLERANCE, "onnx-fp16": diff <= FP16_TOLERANCE}.get(name, agree >= INT8_MIN_AGREEMENT)
        entry = {"file": fname, "sha256": file_sha256(out_dir / fname), "bytes": (out_dir / fname).stat().st_size,
                 "check": {"rows": len(check_texts), "max_abs_diff": diff, "label_agreement": agree,
                           "reference": "saved_model"}}
        if ok:
            result[name] = {**entry, **(evaluate(name, scorer, got) if evaluate else {})}
            log.info("backend %s: max |diff| %.2e, label agreement %.4f over %d rows", name, diff, agree, len(ref))
        else:
            (out_dir / fname).unlink(missing_ok=True)
            result[f"{name}_error"] = f"failed its check against the SavedModel: {entry['check']}"
            log.warning("backend %s dropped: %s", name, result[f"{name}_error"])
    result["build_seconds"] = round(build_s, 2)
    return result


def fp16_encoder(model):
    """A copy of the graph whose encoder (the embedding and layer nodes of :func:`build_graph`,
    named ``emb`` and ``l<i>_...``) computes in float16: its float weights become
    float16 and its output is cast back to float32 for the pooling and head, which stay float32
    (the mask, sums and sigmoid lose nothing). Inputs and outputs keep their types."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    half = onnx.ModelProto()
    half.CopyFrom(model)
    g = half.graph
    enc = [n for n in g.node if n.name == "emb" or (n.name[:1] == "l" and n.name[1:2].isdigit())]
    enc_names = {n.name for n in enc}
    rest_inputs = {i for n in g.node if n.name not in enc_names for i in n.input}
    enc_inputs = {i for n in enc for i in n.input}
    for t in g.initializer:
        if t.name in enc_inputs and t.data_type == TensorProto.FLOAT:
            if t.name in rest_inputs:
                raise ValueError(f"weight {t.name} is shared by the encoder and the head")
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float16), t.name))
    last = enc[-1].output[0]
    for n in g.node:
        if n.name not in enc_names:
            for k, i in enumerate(n.input):
                if i == last:
                    n.input[k] = last + "_fp32"
    g.node.insert(list(g.node).index(enc[-1]) + 1,
                  helper.make_node("Cast", [last], [last + "_fp32"], name=last + "_fp32", to=TensorProto.FLOAT))
    onnx.checker.check_model(half)
    return half


def _fast_gelu(model):
    """A copy of the graph with FastGelu (tanh approximation, same inputs) for the exact (erf)
    BiasGelu. Only for the int8 graph, which is judged by label agreement and test metrics, not
    by 1e-4."""
    import onnx

    fast = onnx.ModelProto()
    fast.CopyFrom(model)
    for n in fast.graph.node:
        if n.op_type == "BiasGelu" and n.domain == MS:
            n.op_type = "FastGelu"
    return fast


def add_to_artifact(artifact: str, check_texts: Sequence[str] | None = None,
                    check_labels: Sequence[int] | None = None) -> dict:
    """Add the ONNX backends to an existing artifact, from its SavedModel's weights. With
    ``check_labels`` (0/1 for ``check_texts``), each backend's metrics on those rows are recorded
    under ``check_metrics`` (test metrics of earlier files do not carry over to new ones)."""
    from sentiment_core import artifact as A
    from sentiment_core.metrics import binary_metrics
    from sentiment_core.scorer import Scorer

    meta = A.load_metadata(artifact)
    tf_scorer = Scorer(artifact, backend="tf")
    weights = bert_weights(tf_scorer._loaded.model.variables)
    if check_texts is None:
        check_texts = default_check_texts()
    heads = int(meta["base_model_config"]["num_attention_heads"])

    def check_metrics(name, scorer, check_probs: np.ndarray) -> dict:
        return {"check_metrics": binary_metrics(np.asarray(check_labels), check_probs[:, 1],
                                                float(meta.get("threshold", 0.5)))}

    backends = write_backends(Path(artifact), weights, heads, meta.get("pooling", "pooled"), tf_scorer.predict_proba,
                              check_texts, evaluate=check_metrics if check_labels is not None else None)
    meta.pop("path", None)
    meta["backends"] = backends
    tmp = Path(artifact) / (A.METADATA + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2))
    os.replace(tmp, Path(artifact) / A.METADATA)
    return backends


def default_check_texts() -> list[str]:
    """Real tweets bundled with the project (data/sample), for checks when no data is given."""
    from sentiment_core.labelled import read_labelled

    sample = Path(__file__).resolve().parents[1] / "data" / "sample" / "sentiment140_sample.csv"
    texts: list[str] = []
    for chunk in read_labelled(str(sample)):
        texts.extend(chunk.texts)
    return texts[:512]


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(prog="python -m training.onnx_export", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="artifact directory")
    p.add_argument("--check-data", help="labelled file whose texts check the backends (default: bundled sample)")
    a = p.parse_args(argv)
    texts = labels = None
    if a.check_data:
        from sentiment_core.labelled import read_labelled

        chunks = list(read_labelled(a.check_data))
        texts = [t for c in chunks for t in c.texts][:CHECK_ROWS]
        labels = [int(y) for c in chunks for y in c.labels][:CHECK_ROWS]
    backends = add_to_artifact(a.model, texts, labels)
    print(json.dumps(backends))
    return 0 if "onnx" in backends else 1


if __name__ == "__main__":
    sys.exit(main())
