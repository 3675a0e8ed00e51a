/* tracecli._speedups: optional compiled helpers of validate's hot loop.
 *
 * scan_block(data, deep) is `upload.typed_lines.block_bytes`'s search of a block in one
 * pass over its bytes, where the pure-Python version makes six (a translate, a find of
 * digit runs, a split on exponents, a regex for "weave", a regex for escaped letters,
 * isascii) and the loops then count each long line's brackets in the translated copy.
 * It returns (refs, text, numbers, deep):
 *   refs    - the block holds `"weave` or a `\u00` escape of a letter of "weave"
 *             (\u0077, \u0065, \u0061, \u0076);
 *   text    - some byte is not ASCII;
 *   numbers - the lines (1-based, counted by "\n") holding a run of 20 or more digits, or
 *             an exponent of three or more digits ([eE+] then digits, then one of
 *             `,}] \t\r\n`): numbers the typed decoder does not size;
 *   deep    - the lines holding `deep` or more "[" and "{" (anywhere, strings included).
 * The two lists are in increasing order, each line once. Any bytes are fine: the scan
 * reads only within the buffer and keeps no reference to it.
 * tests/test_speedups.py holds it to the pure-Python search on arbitrary bytes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

/* byte classes */
#define K_DIGIT 1
#define K_EXP 2   /* e E + : what begins an exponent (as the translated block reads it) */
#define K_TERM 4  /* , } ] space \t \r \n : what may end a number */

static unsigned char klass[256];

static void init_klass(void) {
    int i;
    for (i = '0'; i <= '9'; i++) klass[i] = K_DIGIT;
    klass['e'] = klass['E'] = klass['+'] = K_EXP;
    klass[','] = klass['}'] = klass[']'] = klass[' '] = K_TERM;
    klass['\t'] = klass['\r'] = klass['\n'] = K_TERM;
}

/* Append line `n` to `list`; -1 on failure. */
static int add_line(PyObject *list, Py_ssize_t n) {
    PyObject *v = PyLong_FromSsize_t(n);
    int rc;
    if (v == NULL) return -1;
    rc = PyList_Append(list, v);
    Py_DECREF(v);
    return rc;
}

/* Whether the line [s, e) holds a run of 20 digits or more, or a run of 3 or more after
 * [eE+] and before a terminator (`e` is the line's end: its "\n", or the data's end,
 * `nl` says which). Every run of 3 digits or more holds one of every third byte: only
 * those are looked at, and a run met is measured from there; the next run begins after
 * it, so the bytes after it are sampled afresh (each byte is read a bounded number of
 * times: the scan stays linear). */
static int has_number(const unsigned char *s, const unsigned char *e, int nl) {
    const unsigned char *p = s, *a, *b;
    while (p < e) {
        if (!(klass[*p] & K_DIGIT)) {
            p += 3;
            continue;
        }
        a = p;
        while (a > s && (klass[a[-1]] & K_DIGIT)) a--;
        b = p + 1;
        while (b < e && (klass[*b] & K_DIGIT)) b++;
        if (b - a >= 20) return 1;
        if (b - a >= 3 && a > s && (klass[a[-1]] & K_EXP) &&
            (b < e ? (klass[*b] & K_TERM) != 0 : nl))
            return 1;
        p = b + 1;  /* (a run after this one begins here or later: sampled as well) */
    }
    return 0;
}

static int escaped_letter(const unsigned char *p, const unsigned char *end) {
    /* p points at a backslash: is it \u0077, \u0065, \u0061 or \u0076? */
    if (end - p < 6) return 0;
    if (p[1] != 'u' || p[2] != '0' || p[3] != '0') return 0;
    if (p[4] == '7') return p[5] == '7' || p[5] == '6';
    if (p[4] == '6') return p[5] == '5' || p[5] == '1';
    return 0;
}

/* Whether the line [s, e) holds `"weave` or an escaped letter of "weave": asked only of
 * the lines where the counting loop saw `"w` or a backslash. */
static int has_refs(const unsigned char *s, const unsigned char *e) {
    const unsigned char *q;
    if (memmem(s, (size_t)(e - s), "\"weave", 6) != NULL) return 1;
    for (q = s; (q = memchr(q, '\\', (size_t)(e - q))) != NULL; q++)
        if (escaped_letter(q, e)) return 1;
    return 0;
}

/* What the counting loops saw in a line, without a branch a byte (each loop vectorizes). */
typedef struct {
    Py_ssize_t openers;  /* "[" and "{" */
    unsigned char refish;  /* nonzero: a `"w` or a "\", where a reference may begin */
    unsigned char high;    /* the bytes OR-ed: bit 7 when one is not ASCII */
} Counts;

static void count_line(const unsigned char *s, Py_ssize_t n, Counts *c) {
    Py_ssize_t i, j, stop;
    unsigned char op, rf = 0, hi = 0;
    for (j = 0; j < n; j = stop) {
        stop = n - j > 255 ? j + 255 : n;  /* (a byte counter: at most 255) */
        op = 0;
        for (i = j; i < stop; i++) {
            hi |= s[i];
            op += (s[i] == '[') | (s[i] == '{');
            rf |= s[i] == '\\';
        }
        c->openers += op;
    }
    for (i = 0; i + 1 < n; i++) rf |= (s[i] == '"') & (s[i + 1] == 'w');
    c->refish = rf;
    c->high |= hi;
}

static PyObject *scan_block(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    const unsigned char *data, *end, *s, *e;
    Py_ssize_t deep, line = 0;
    int nl, refs = 0;
    Counts c = {0, 0, 0};
    PyObject *numbers = NULL, *deeps = NULL, *out;

    (void)self;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "scan_block(data, deep) takes 2 arguments");
        return NULL;
    }
    if (!PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "scan_block: data must be bytes");
        return NULL;
    }
    deep = PyLong_AsSsize_t(args[1]);
    if (deep == -1 && PyErr_Occurred()) return NULL;
    if (deep < 1) deep = 1;
    numbers = PyList_New(0);
    deeps = PyList_New(0);
    if (numbers == NULL || deeps == NULL) goto fail;

    data = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    end = data + PyBytes_GET_SIZE(args[0]);
    for (s = data; s < end; s = e + 1) {
        line++;
        e = memchr(s, '\n', (size_t)(end - s));
        nl = e != NULL;
        if (!nl) e = end;
        c.openers = 0;
        count_line(s, e - s, &c);
        if (c.refish && !refs) refs = has_refs(s, e);
        if (c.openers >= deep && add_line(deeps, line) < 0) goto fail;
        if (has_number(s, e, nl) && add_line(numbers, line) < 0) goto fail;
    }
    out = PyTuple_New(4);
    if (out == NULL) goto fail;
    PyTuple_SET_ITEM(out, 0, Py_NewRef(refs ? Py_True : Py_False));
    PyTuple_SET_ITEM(out, 1, Py_NewRef(c.high & 0x80 ? Py_True : Py_False));
    PyTuple_SET_ITEM(out, 2, numbers);  /* (the tuple takes these references) */
    PyTuple_SET_ITEM(out, 3, deeps);
    return out;
fail:
    Py_XDECREF(numbers);
    Py_XDECREF(deeps);
    return NULL;
}

static PyMethodDef methods[] = {
    {"scan_block", (PyCFunction)(void (*)(void))scan_block, METH_FASTCALL,
     "scan_block(data: bytes, deep: int) -> (refs, text, numbers, deep): the block search of "
     "tracecli.upload.typed_lines in one pass (see the module's source)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "tracecli._speedups",
    "Optional compiled helpers of validate's hot loop (pure-Python fallbacks exist).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__speedups(void) {
    init_klass();
    return PyModule_Create(&module);
}
