# cython: language_level=3
"""The one place Python meets C: builds C layer tables from validated layer specs and runs
steps and sequences with the GIL released. Everything here trusts nothing: sizes are checked
again before a pointer reaches C, so a wrong spec raises instead of reading out of bounds.
"""
import os

import numpy as np

cimport numpy as cnp
from libc.stdint cimport int8_t, int32_t, uint8_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy

cnp.import_array()

cdef extern from "lstmlite.h" nogil:
    ctypedef struct ll_activation:
        int kind
        float alpha
        float beta

    ctypedef struct ll_layer:
        int kind
        int input_size
        int hidden_size
        int proj_size
        int num_directions
        int reverse
        int input_forget
        int linear_before_reset
        float clip
        ll_activation act[2][3]
        int weight_dtype
        const float *w_ih[2]
        const float *w_hh[2]
        const float *b_ih[2]
        const float *b_hh[2]
        const float *w_hr[2]
        const float *peephole[2]
        const int8_t *q_ih[2]
        const int8_t *q_hh[2]
        const int8_t *q_hr[2]
        const float *s_ih[2]
        const float *s_hh[2]
        const float *s_hr[2]
        const float *weight
        const int8_t *q_weight
        const float *s_weight
        const float *bias
        ll_activation dense_act
        int normalize_mode
        const float *norm_a
        const float *norm_b
        int channels
        int length
        int kernel_size
        int stride
        int dilation
        int groups
        int pad_begin
        int pad_end
        int pad_mode
        int fft_bins
        int fft_sign
        int offsets[2]

    ctypedef struct ll_model:
        int num_layers
        const ll_layer *layers

    int LL_ACT_COUNT
    int LL_LAYER_LSTM
    int LL_LAYER_GRU
    int LL_LAYER_RNN
    int LL_LAYER_DENSE
    int LL_LAYER_NORMALIZE
    int LL_LAYER_CONV1D
    int LL_LAYER_MAGNITUDE
    int LL_LAYER_MEAN
    int LL_LAYER_ELEMENTWISE
    int LL_PAD_ZEROS
    int LL_PAD_REFLECT
    int LL_PAD_REPLICATE
    int LL_PAD_CIRCULAR
    int LL_ACT_SOFTMAX
    int LL_ACT_LOG_SOFTMAX
    int ll_conv1d_out_length(const ll_layer *layer)
    int LL_MAX_CELL_ACTIVATIONS
    int LL_DTYPE_FLOAT32
    int LL_DTYPE_INT8
    int LL_DTYPE_COUNT
    int LL_INT8_MAX_K
    int ll_layer_output_size(const ll_layer *layer)
    int ll_layer_is_recurrent(const ll_layer *layer)
    int ll_layer_h_size(const ll_layer *layer)
    int ll_layer_c_size(const ll_layer *layer)
    size_t ll_layer_scratch_bytes(const ll_layer *layer, int batch)
    size_t ll_layer_sequence_scratch_bytes(const ll_layer *layer)
    size_t ll_layer_weight_bytes(const ll_layer *layer)
    size_t ll_layer_packed_bytes(const ll_layer *layer)
    void ll_layer_pack(ll_layer *layer, void *buffer)
    size_t ll_model_state_bytes(const ll_model *model, int batch)
    size_t ll_model_scratch_bytes(const ll_model *model, int batch)
    void ll_model_step(const ll_model *model, int batch, const float *x, float *state,
                       void *scratch, float *out)
    void ll_layer_sequence(const ll_layer *layer, int batch, int steps, const float *inp,
                           float *out, const int32_t *lengths, float *h, float *c,
                           void *scratch)
    float ll_quantize_s8(const float *x, int n, int8_t *q)
    const char *ll_dtype_name(int dtype)
    const char *ll_activation_name(int kind)
    void ll_activate(const ll_activation *act, float clip, float *x, int n)
    const char *ll_kernels_active()
    const char *const *ll_kernels_compiled()
    const char *ll_cpu_features()
    int ll_kernels_select(const char *name)
    int ll_kernels_supported(const char *name)

cdef extern from "kernels.h" nogil:
    ctypedef struct ll_kernel_table:
        void (*gemm_s8_panels)(int M, int N, int K, const uint8_t *panels, const int8_t *X,
                               int ldx, int32_t *acc, int ldacc) noexcept nogil
    ctypedef struct ll_matrix:
        const float *w
        const int8_t *q
        const float *s
        const int32_t *sums
        const uint8_t *panels
    const ll_kernel_table *ll_active_kernels
    void ll_row_sums_s8(int M, int K, const int8_t *W, int32_t *sums) noexcept nogil
    size_t ll_s8_panels_bytes(int M, int K) noexcept nogil
    void ll_pack_s8_panels(int M, int K, const int8_t *W, uint8_t *panels) noexcept nogil
    void ll_s8_product(ll_matrix A, int M, int N, int K, const int8_t *X, int ldx,
                       int32_t *acc, int ldacc) noexcept nogil


# ---- activations and kernels -------------------------------------------------------------

def activation_names():
    """Activation names indexed by their C (and file format) id: the one table, from C."""
    return [ll_activation_name(i).decode("ascii") for i in range(LL_ACT_COUNT)]


def dtype_names():
    """Tensor dtype names indexed by their C (and file format) id: the one table, from C."""
    return [ll_dtype_name(i).decode("ascii") for i in range(LL_DTYPE_COUNT)]


def kernels_active():
    return ll_kernels_active().decode("ascii")


def kernels_compiled():
    """Names of the kernel sets built into this module, best first."""
    cdef const char *const *names = ll_kernels_compiled()
    result = []
    cdef int i = 0
    while names[i] != NULL:
        result.append(names[i].decode("ascii"))
        i += 1
    return result


def cpu_features():
    """The CPU features the dispatcher probed for and found (e.g. ["avx2", "fma"])."""
    return ll_cpu_features().decode("ascii").split()


def kernels_supported(str name):
    return bool(ll_kernels_supported(name.encode("ascii")))


def select_kernels(str name):
    """Switch the kernel set for every model in this process ("auto", "generic", "avx2").
    Meant for start-up and tests: not while another thread is stepping."""
    if ll_kernels_select(name.encode("ascii")) != 0:
        raise ValueError(f"kernel set {name!r} is not available on this CPU/build")
    return kernels_active()


def apply_activation(int kind, float alpha, float beta, float clip, x):
    """Applies one activation to a copy of x (1-D float32); for tests of the C activations."""
    cdef cnp.ndarray arr = np.array(x, dtype=np.float32, copy=True, order="C").reshape(-1)
    if kind < 0 or kind >= LL_ACT_COUNT:
        raise ValueError(f"activation id {kind} is outside 0..{LL_ACT_COUNT - 1}")
    cdef ll_activation act
    act.kind = kind
    act.alpha = alpha
    act.beta = beta
    with nogil:
        ll_activate(&act, clip, <float *>cnp.PyArray_DATA(arr), <int>cnp.PyArray_SIZE(arr))
    return arr


def quantize_s8(x):
    """(q, scale) of a 1-D float32 vector as the int8 kernels quantize it every step; for
    tests, which reproduce it in NumPy."""
    cdef cnp.ndarray arr = np.array(x, dtype=np.float32, copy=True, order="C").reshape(-1)
    cdef cnp.ndarray q = np.empty(arr.size, dtype=np.int8)
    cdef float scale
    with nogil:
        scale = ll_quantize_s8(<const float *>cnp.PyArray_DATA(arr), <int>cnp.PyArray_SIZE(arr),
                               <int8_t *>cnp.PyArray_DATA(q))
    return q, scale


def kernels_read_s8_panels():
    """Whether the active kernel set has an int8 product of any number of columns on panels
    (gemm_s8_panels: VNNI on x86, sdot and smull on aarch64). x86's sets without VNNI read
    panels only for a stream's step, with its float side (gemm_s8_panels_scaled)."""
    return ll_active_kernels.gemm_s8_panels != NULL


def gemm_s8(W, X, panels=False):
    """int32 X @ W.T by the active kernel set's int8 product: W (M, K) and X (K,) or (N, K)
    int8 in -127..127; returns (M,) or (N, M). panels=True packs W in panels first (for
    the sets that read them, kernels_read_s8_panels(); the others take the row-major W, as a
    model's step does). For tests: every set and layout must return exact arithmetic."""
    cdef cnp.ndarray w = np.ascontiguousarray(W, dtype=np.int8)
    cdef cnp.ndarray x = np.ascontiguousarray(X, dtype=np.int8)
    single = x.ndim == 1
    if single:
        x = x.reshape(1, -1)
    if w.ndim != 2 or w.shape[1] > LL_INT8_MAX_K or x.ndim != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(f"gemm_s8: W {np.shape(W)} and X {np.shape(X)} do not fit "
                         f"(expected (M, K <= {LL_INT8_MAX_K}) and (K,) or (N, K))")
    if (w.size and w.min() < -127) or (x.size and x.min() < -127):
        raise ValueError("gemm_s8: -128 is outside the kernels' range -127..127")
    cdef int M = <int>w.shape[0], N = <int>x.shape[0], K = <int>w.shape[1]
    cdef cnp.ndarray acc = np.empty((N, M), dtype=np.int32)
    cdef cnp.ndarray sums = np.empty(M, dtype=np.int32)
    cdef cnp.ndarray packed = np.empty(ll_s8_panels_bytes(M, K) if panels else 0,
                                       dtype=np.uint8)
    cdef bint in_panels = bool(panels)
    cdef ll_matrix A
    A.w = NULL
    A.s = NULL
    A.q = <const int8_t *>cnp.PyArray_DATA(w)
    A.sums = <const int32_t *>cnp.PyArray_DATA(sums)
    A.panels = NULL
    with nogil:
        ll_row_sums_s8(M, K, A.q, <int32_t *>A.sums)
        if in_panels:
            ll_pack_s8_panels(M, K, A.q, <uint8_t *>cnp.PyArray_DATA(packed))
            A.panels = <const uint8_t *>cnp.PyArray_DATA(packed)
        ll_s8_product(A, M, N, K, <const int8_t *>cnp.PyArray_DATA(x), K,
                      <int32_t *>cnp.PyArray_DATA(acc), M)
    return acc[0] if single else acc


_selected = select_kernels(os.environ.get("LSTMLITE_KERNELS", "auto") or "auto")


# ---- model -------------------------------------------------------------------------------

cdef const void *_data_ptr(object arr, object dtype, Py_ssize_t expected,
                           str what) except? NULL:
    """Pointer to a C-contiguous array of `dtype` with exactly `expected` elements, or NULL
    for None."""
    if arr is None:
        return NULL
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{what}: expected a numpy array, got {type(arr).__name__}")
    cdef cnp.ndarray a = arr
    if a.dtype != dtype or not a.flags.c_contiguous:
        raise TypeError(f"{what}: expected C-contiguous {np.dtype(dtype).name}, got {a.dtype} "
                        f"(contiguous={a.flags.c_contiguous})")
    if a.size != expected:
        raise ValueError(f"{what}: expected {expected} elements, got {a.size}")
    return cnp.PyArray_DATA(a)


cdef inline const float *_float_ptr(object arr, Py_ssize_t expected, str what) except? NULL:
    return <const float *>_data_ptr(arr, np.float32, expected, what)


cdef class CoreModel:
    """C layer table of a validated Model; holds references to every array it points into."""
    cdef ll_layer *layers
    cdef ll_model model
    cdef list _keep
    cdef readonly int input_size
    cdef readonly int output_size
    cdef readonly int num_layers

    def __cinit__(self, list specs):
        self.layers = NULL
        self._keep = []
        if not specs:
            raise ValueError("a model needs at least one layer")
        self.layers = <ll_layer *>calloc(len(specs), sizeof(ll_layer))
        if self.layers == NULL:
            raise MemoryError()
        for index, spec in enumerate(specs):
            self._fill(index, spec)
        self.model.num_layers = len(specs)
        self.model.layers = self.layers
        self.num_layers = len(specs)
        self.input_size = self.layers[0].input_size
        self.output_size = ll_layer_output_size(&self.layers[len(specs) - 1])
        for index in range(1, len(specs)):
            if self.layers[index].input_size != ll_layer_output_size(&self.layers[index - 1]):
                raise ValueError(f"layer {index}: input size {self.layers[index].input_size} "
                                 f"does not match the previous layer's output size "
                                 f"{ll_layer_output_size(&self.layers[index - 1])}")
        self._pack()

    cdef void _pack(self) except *:
        """What the kernels read besides the arrays given (ll_layer_pack: float32 matrices in
        the panel layout, int8 row sums, the summed gate bias), in one 64-byte aligned buffer for the model,
        each layer's part a multiple of 64 bytes. Done once, here: a step never packs. The
        arrays given stay as they are (save, quantize and inspection read them)."""
        cdef list sizes = [ll_layer_packed_bytes(&self.layers[index])
                           for index in range(self.num_layers)]
        cdef cnp.ndarray buffer = np.empty(sum(sizes) + 64, dtype=np.uint8)
        cdef unsigned char *at = <unsigned char *>cnp.PyArray_DATA(buffer)
        cdef int index
        self._keep.append(buffer)
        at += (64 - <size_t>at % 64) % 64
        for index in range(self.num_layers):
            ll_layer_pack(&self.layers[index], at)
            at += <size_t>sizes[index]

    def __dealloc__(self):
        free(self.layers)

    cdef void _fill(self, int index, dict spec) except *:
        cdef ll_layer *L = &self.layers[index]
        cdef int d, a, H, I, P, G, nd
        where = f"layer {index}"
        L.kind = spec["kind"]
        L.input_size = I = spec["input_size"]
        L.hidden_size = H = spec["hidden_size"]
        L.proj_size = spec.get("proj_size", 0)
        L.num_directions = nd = spec.get("num_directions", 1)
        L.reverse = spec.get("reverse", 0)
        L.input_forget = spec.get("input_forget", 0)
        L.linear_before_reset = spec.get("linear_before_reset", 1)
        L.clip = spec.get("clip", float("inf"))
        L.weight_dtype = spec.get("weight_dtype", LL_DTYPE_FLOAT32)
        if I <= 0 or H <= 0 or nd not in (1, 2) or L.proj_size < 0:
            raise ValueError(f"{where}: sizes must be positive (input {I}, hidden {H}, "
                             f"directions {nd}, proj {L.proj_size})")
        if L.weight_dtype not in (LL_DTYPE_FLOAT32, LL_DTYPE_INT8):
            raise ValueError(f"{where}: weight dtype id {L.weight_dtype} is not one the "
                             f"kernels compute in (float32 or int8)")
        # the longest int8 reduction: the input (Dense), a patch (Conv1d) or the input or h
        # (recurrent layers)
        longest = I if L.kind == LL_LAYER_DENSE else max(I, H)
        if L.kind == LL_LAYER_CONV1D:
            self._conv_geometry(L, spec, where)
            longest = L.channels // L.groups * L.kernel_size
        if L.weight_dtype == LL_DTYPE_INT8 and longest > LL_INT8_MAX_K:
            raise ValueError(f"{where}: int8 products take at most {LL_INT8_MAX_K} inputs "
                             f"(the int32 sums must not overflow), got {longest}")
        arrays = spec.get("arrays", {})
        self._keep.append(arrays)
        if ll_layer_is_recurrent(L):
            G = 4 if L.kind == LL_LAYER_LSTM else 3 if L.kind == LL_LAYER_GRU else 1
            P = L.proj_size if L.proj_size > 0 else H
            acts = spec["activations"]
            if len(acts) != nd:
                raise ValueError(f"{where}: expected activations for {nd} directions")
            for d in range(nd):
                if len(acts[d]) > LL_MAX_CELL_ACTIVATIONS:
                    raise ValueError(f"{where}: too many activations")
                for a in range(len(acts[d])):
                    self._set_activation(&L.act[d][a], acts[d][a], where)
                if L.weight_dtype == LL_DTYPE_INT8:
                    self._int8_matrix(arrays["w_ih"][d], G * H, I, f"{where} w_ih",
                                      &L.q_ih[d], &L.s_ih[d])
                    self._int8_matrix(arrays["w_hh"][d], G * H, P, f"{where} w_hh",
                                      &L.q_hh[d], &L.s_hh[d])
                else:
                    L.w_ih[d] = _float_ptr(arrays["w_ih"][d], G * H * I, f"{where} w_ih")
                    L.w_hh[d] = _float_ptr(arrays["w_hh"][d], G * H * P, f"{where} w_hh")
                    if L.w_ih[d] == NULL or L.w_hh[d] == NULL:
                        raise ValueError(f"{where}: weights are required")
                L.b_ih[d] = _float_ptr(arrays["b_ih"][d], G * H, f"{where} b_ih")
                L.b_hh[d] = _float_ptr(arrays["b_hh"][d], G * H, f"{where} b_hh")
                if L.kind == LL_LAYER_LSTM:
                    if (arrays["w_hr"][d] is None) != (L.proj_size == 0):
                        raise ValueError(f"{where}: w_hr and proj_size disagree")
                    if L.proj_size and L.weight_dtype == LL_DTYPE_INT8:
                        self._int8_matrix(arrays["w_hr"][d], P, H, f"{where} w_hr",
                                          &L.q_hr[d], &L.s_hr[d])
                    elif L.proj_size:
                        L.w_hr[d] = _float_ptr(arrays["w_hr"][d], P * H, f"{where} w_hr")
                    L.peephole[d] = _float_ptr(arrays["peephole"][d], 3 * H,
                                               f"{where} peephole")
        elif L.kind in (LL_LAYER_DENSE, LL_LAYER_CONV1D):
            # one weight matrix (H, columns): Dense's inputs, or a Conv1d's patch
            columns = I if L.kind == LL_LAYER_DENSE else \
                L.channels // L.groups * L.kernel_size
            if L.weight_dtype == LL_DTYPE_INT8:
                self._int8_matrix(arrays["weight"], H, columns, f"{where} weight",
                                  &L.q_weight, &L.s_weight)
            else:
                L.weight = _float_ptr(arrays["weight"], H * columns, f"{where} weight")
                if L.weight == NULL:
                    raise ValueError(f"{where}: weight is required")
            L.bias = _float_ptr(arrays["bias"], H, f"{where} bias")
            self._set_activation(&L.dense_act, spec["activation"], where)
            if L.kind == LL_LAYER_CONV1D and \
                    L.dense_act.kind in (LL_ACT_SOFTMAX, LL_ACT_LOG_SOFTMAX):
                raise ValueError(f"{where}: a Conv1d's activation is elementwise")
        elif L.kind == LL_LAYER_NORMALIZE:
            if L.weight_dtype != LL_DTYPE_FLOAT32:
                raise ValueError(f"{where}: a Normalize layer has no int8 form")
            L.normalize_mode = spec["mode"]
            if L.normalize_mode not in (0, 1):
                raise ValueError(f"{where}: unknown normalize mode {L.normalize_mode}")
            L.norm_a = _float_ptr(arrays["a"], I, f"{where} a")
            L.norm_b = _float_ptr(arrays["b"], I, f"{where} b")
            if L.norm_a == NULL or L.norm_b == NULL:
                raise ValueError(f"{where}: both normalize vectors are required")
        elif L.kind == LL_LAYER_MAGNITUDE:
            L.offsets[0], L.offsets[1] = spec["offsets"]
            L.channels, L.length = spec["rows"], spec["row_stride"]
            if L.channels <= 0 or H % L.channels or L.length < 0 or \
                    (L.channels > 1 and L.length < H // L.channels):
                raise ValueError(f"{where}: {L.channels} rows of {H} values, {L.length} apart, "
                                 f"do not make blocks")
            # the last value a block reads
            last = max(L.offsets[0], L.offsets[1]) + (L.channels - 1) * L.length + \
                H // L.channels - 1
            if min(L.offsets[0], L.offsets[1]) < 0 or last >= I:
                raise ValueError(f"{where}: blocks at {L.offsets[0]} and {L.offsets[1]} do not "
                                 f"fit in {I} inputs")
        elif L.kind == LL_LAYER_ELEMENTWISE:
            if H != I:
                raise ValueError(f"{where}: an Elementwise layer has as many outputs as inputs")
            self._set_activation(&L.dense_act, spec["activation"], where)
        elif L.kind == LL_LAYER_MEAN:
            L.channels, L.length = spec["channels"], spec["length"]
            if L.channels <= 0 or L.length <= 0 or L.channels * L.length != I:
                raise ValueError(f"{where}: {L.channels} channels of {L.length} positions are "
                                 f"not {I} inputs")
        else:
            raise ValueError(f"{where}: unknown layer kind {L.kind}")

    cdef void _conv_geometry(self, ll_layer *L, dict spec, str where) except *:
        """A Conv1d's shape, checked so that every index the kernel computes is inside the
        step's input: positive sizes, channels and out channels divisible by groups, pads
        the mode can fill (reflect: < length; circular: <= length), an output at least one
        position long."""
        L.channels, L.length = spec["channels"], spec["length"]
        L.kernel_size, L.stride, L.dilation = spec["kernel_size"], spec["stride"], spec["dilation"]
        L.groups = spec["groups"]
        L.pad_begin, L.pad_end = spec["pads"]
        L.pad_mode = spec["pad_mode"]
        if min(L.channels, L.length, L.kernel_size, L.stride, L.dilation, L.groups) <= 0 or \
                min(L.pad_begin, L.pad_end) < 0:
            raise ValueError(f"{where}: Conv1d sizes must be positive and pads >= 0")
        if L.channels * L.length != L.input_size:
            raise ValueError(f"{where}: {L.channels} channels of {L.length} positions are not "
                             f"{L.input_size} inputs")
        if L.channels % L.groups or L.hidden_size % L.groups:
            raise ValueError(f"{where}: {L.groups} groups do not divide {L.channels} in and "
                             f"{L.hidden_size} out channels")
        if L.pad_mode not in (LL_PAD_ZEROS, LL_PAD_REFLECT, LL_PAD_REPLICATE, LL_PAD_CIRCULAR):
            raise ValueError(f"{where}: unknown pad mode {L.pad_mode}")
        widest = max(L.pad_begin, L.pad_end)
        if (L.pad_mode == LL_PAD_REFLECT and widest >= L.length) or \
                (L.pad_mode == LL_PAD_CIRCULAR and widest > L.length):
            raise ValueError(f"{where}: pads {L.pad_begin}, {L.pad_end} are too wide for "
                             f"{L.length} positions in this pad mode")
        L.fft_bins, L.fft_sign = spec.get("fft", (0, 0))
        if L.fft_bins:
            N = L.kernel_size
            if L.channels != 1 or L.groups != 1 or L.dilation != 1 or N < 4 or N & (N - 1) \
                    or L.hidden_size != 2 * L.fft_bins or L.fft_bins > N // 2 + 1 \
                    or L.fft_sign not in (-1, 1) or L.weight_dtype != LL_DTYPE_FLOAT32:
                raise ValueError(f"{where}: an FFT Conv1d has one channel and group, no "
                                 f"dilation, a power-of-two kernel, float32 weights and 2 x "
                                 f"bins <= kernel + 2 outputs")
        if ll_conv1d_out_length(L) <= 0:
            raise ValueError(f"{where}: the kernel ({L.kernel_size}, dilation {L.dilation}) is "
                             f"longer than the {L.length} padded positions")

    cdef void _int8_matrix(self, object pair, Py_ssize_t rows, Py_ssize_t cols, str what,
                           const int8_t **q, const float **scale) except *:
        """Points q and scale at an int8 matrix given as (q (rows, cols), scale (rows,))."""
        if not isinstance(pair, tuple) or len(pair) != 2 or pair[0] is None or pair[1] is None:
            raise TypeError(f"{what}: an int8 matrix is a (q, scale) pair of arrays")
        q[0] = <const int8_t *>_data_ptr(pair[0], np.int8, rows * cols, what)
        scale[0] = _float_ptr(pair[1], rows, what + " scale")

    cdef void _set_activation(self, ll_activation *act, tuple triple, str where) except *:
        kind, alpha, beta = triple
        if kind < 0 or kind >= LL_ACT_COUNT:
            raise ValueError(f"{where}: activation id {kind} is outside 0..{LL_ACT_COUNT - 1}")
        act.kind = kind
        act.alpha = alpha
        act.beta = beta

    def state_bytes(self, int batch):
        return ll_model_state_bytes(&self.model, batch)

    def scratch_bytes(self, int batch=1):
        """Bytes of scratch a step of `batch` streams needs."""
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        return ll_model_scratch_bytes(&self.model, batch)

    def sequence_scratch_bytes(self, int index):
        """Bytes of scratch run_layer(index, ...) needs, for any batch and length."""
        if index < 0 or index >= self.num_layers:
            raise IndexError(index)
        return ll_layer_sequence_scratch_bytes(&self.layers[index])

    def layer_weight_bytes(self, int index):
        """Bytes of layer `index`'s weights, scales and biases as the kernels read them."""
        if index < 0 or index >= self.num_layers:
            raise IndexError(index)
        return ll_layer_weight_bytes(&self.layers[index])


    def state_layout(self, int batch):
        """Per recurrent layer: (layer index, h offset, h size, c offset, c size) in a stream's
        state buffer of `batch` elements (floats, h and c blocks shaped (batch, size))."""
        layout = []
        cdef size_t offset = 0
        cdef int l, hs, cs
        for l in range(self.num_layers):
            if not ll_layer_is_recurrent(&self.layers[l]):
                continue
            hs = ll_layer_h_size(&self.layers[l])
            cs = ll_layer_c_size(&self.layers[l])
            layout.append((l, offset, hs, offset + batch * hs, cs))
            offset += batch * (hs + cs) * self.layers[l].num_directions
        return layout

    def run_layer(self, int index, cnp.ndarray inp, cnp.ndarray out, lengths,
                  h, c, cnp.ndarray scratch):
        """One layer over whole sequences: inp (B, T, I) -> out (B, T, O), float32 C order;
        lengths None or int32 (B,); h/c (num_directions, B, size) updated in place."""
        if index < 0 or index >= self.num_layers:
            raise IndexError(index)
        cdef const ll_layer *L = &self.layers[index]
        if inp.ndim != 3 or out.ndim != 3:
            raise ValueError("run_layer takes (B, T, F) arrays")
        cdef int B = <int>inp.shape[0], T = <int>inp.shape[1]
        cdef int nd = L.num_directions
        _float_ptr(inp, <Py_ssize_t>B * T * L.input_size, "input")
        _float_ptr(out, <Py_ssize_t>B * T * ll_layer_output_size(L), "output")
        if (scratch.dtype != np.uint8 or not scratch.flags.c_contiguous
                or <size_t>scratch.size < ll_layer_sequence_scratch_bytes(L)):
            raise ValueError(f"scratch: expected at least {ll_layer_sequence_scratch_bytes(L)} "
                             f"C-contiguous uint8 elements")
        cdef float *hp = NULL
        cdef float *cp = NULL
        cdef const int32_t *lp = NULL
        cdef cnp.ndarray la
        if ll_layer_is_recurrent(L):
            hp = <float *>_float_ptr(h, <Py_ssize_t>nd * B * ll_layer_h_size(L), "h")
            if ll_layer_c_size(L):
                cp = <float *>_float_ptr(c, <Py_ssize_t>nd * B * ll_layer_c_size(L), "c")
        if lengths is not None:
            la = lengths
            if la.dtype != np.int32 or not la.flags.c_contiguous or la.size != B:
                raise TypeError("lengths: expected C-contiguous int32 of the batch size")
            if B and (la.min() < 0 or la.max() > T):
                raise ValueError(f"lengths must lie in 0..{T}")
            lp = <const int32_t *>cnp.PyArray_DATA(la)
        cdef const float *ip = <const float *>cnp.PyArray_DATA(inp)
        cdef float *op = <float *>cnp.PyArray_DATA(out)
        cdef void *sp = cnp.PyArray_DATA(scratch)
        with nogil:
            ll_layer_sequence(L, B, T, ip, op, lp, hp, cp, sp)


# ---- streams -----------------------------------------------------------------------------

cdef class StreamCore:
    """State, scratch and output of a stream, allocated once; step() is the hot path.

    The fast path takes a float32 C-contiguous ndarray of the exact shape and reads its data
    pointer directly (no memoryview, no allocation); anything else goes through _coerce(),
    which converts or raises before the state is touched.
    """
    cdef CoreModel _core
    cdef cnp.ndarray _state
    cdef cnp.ndarray _scratch
    cdef cnp.ndarray _out
    cdef int _batch          # number of streams stepped together (1 for an unbatched stream)
    cdef bint _batched       # step takes (batch, I) rather than (I,)
    cdef int _in_size
    cdef int _out_size
    cdef public bint _poison_scratch  # tests: fill scratch with NaN before every step

    def _setup_core(self, CoreModel core, int batch, bint batched):
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        self._core = core
        self._batch = batch
        self._batched = batched
        self._in_size = core.input_size
        self._out_size = core.output_size
        self._state = np.zeros(core.state_bytes(batch) // 4, dtype=np.float32)
        # bytes: float parts, int8 vectors and int32 sums side by side (see the cells)
        self._scratch = np.zeros(core.scratch_bytes(batch), dtype=np.uint8)
        if batched:
            self._out = np.zeros((batch, self._out_size), dtype=np.float32)
        else:
            self._out = np.zeros(self._out_size, dtype=np.float32)
        self._poison_scratch = False

    @property
    def _state_buffer(self):
        return self._state

    @property
    def _output_buffer(self):
        return self._out

    cdef inline bint _fits(self, object x):
        """True if x can be read in place: exact ndarray, float32, C-contiguous, right shape."""
        if type(x) is not cnp.ndarray:
            return False
        cdef cnp.ndarray a = <cnp.ndarray>x
        if cnp.PyArray_TYPE(a) != cnp.NPY_FLOAT32 or not cnp.PyArray_IS_C_CONTIGUOUS(a):
            return False
        if self._batched:
            return (cnp.PyArray_NDIM(a) == 2 and cnp.PyArray_DIM(a, 0) == self._batch
                    and cnp.PyArray_DIM(a, 1) == self._in_size)
        return cnp.PyArray_NDIM(a) == 1 and cnp.PyArray_DIM(a, 0) == self._in_size

    cdef inline bint _fits_out(self, object out):
        """True if out can take the result: ndarray, float32, C-contiguous, writeable, and
        exactly the output shape."""
        if not isinstance(out, cnp.ndarray):
            return False
        cdef cnp.ndarray a = <cnp.ndarray>out
        if (cnp.PyArray_TYPE(a) != cnp.NPY_FLOAT32 or not cnp.PyArray_IS_C_CONTIGUOUS(a)
                or not cnp.PyArray_ISWRITEABLE(a)):
            return False
        if self._batched:
            return (cnp.PyArray_NDIM(a) == 2 and cnp.PyArray_DIM(a, 0) == self._batch
                    and cnp.PyArray_DIM(a, 1) == self._out_size)
        return cnp.PyArray_NDIM(a) == 1 and cnp.PyArray_DIM(a, 0) == self._out_size

    def step(self, x, out=None):
        """step(x, out=None) -> output: advance every layer by one time step.

        x: (input_size,) float32, or (batch, input_size) for a batched stream. Returns the
        stream's output buffer (the same array every call, overwritten by the next step), or
        `out` with the result copied into it. The state persists until reset(); a step that
        raises leaves it unchanged. See lstmlite.Stream for the whole contract."""
        cdef cnp.ndarray arr
        if self._core is None:
            raise RuntimeError("stream is not initialised")
        if self._fits(x):
            arr = <cnp.ndarray>x
        else:
            arr = self._coerce(x)
            if not self._fits(arr):  # never trust an override with a pointer
                raise TypeError("step: the converted input does not fit the stream")
        if out is not None and not self._fits_out(out):
            self._check_out(out)  # raises with the full message
            raise TypeError("step: out does not fit the stream's output")
        if self._poison_scratch:
            self._scratch.fill(0xFF)  # every float part reads as NaN, every integer as -1
        cdef const float *xp = <const float *>cnp.PyArray_DATA(arr)
        cdef float *state = <float *>cnp.PyArray_DATA(self._state)
        cdef void *scratch = cnp.PyArray_DATA(self._scratch)
        cdef float *result = <float *>cnp.PyArray_DATA(self._out)
        with nogil:
            ll_model_step(&self._core.model, self._batch, xp, state, scratch, result)
        if out is None:
            return self._out
        memcpy(cnp.PyArray_DATA(<cnp.ndarray>out), result,
               <size_t>self._batch * self._out_size * sizeof(float))
        return out

    def _coerce(self, x):
        # overridden by lstmlite.Stream with the full error messages
        raise TypeError("unsupported input")

    def _check_out(self, out):
        # overridden by lstmlite.Stream with the full error messages
        raise TypeError("unsupported out")
