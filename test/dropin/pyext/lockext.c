/* SPDX-License-Identifier: MIT */
/*
 * A Python C extension that knows nothing of fsafe: an exported mutex and a
 * worker thread that holds it.  FSAFE_LOCKS names the mutex before the module
 * is imported (so before it is loaded); fsafe must register it at the import.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <time.h>

__attribute__((visibility("default"))) pthread_mutex_t lockext_mutex = PTHREAD_MUTEX_INITIALIZER;
static volatile int holding;
static long hold_ms;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static void *worker(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&lockext_mutex);
        __atomic_store_n(&holding, 1, __ATOMIC_RELEASE);
        sleep_ms(hold_ms);
        pthread_mutex_unlock(&lockext_mutex);
        sleep_ms(1);
    }
    return NULL;
}

/* start(ms): the worker holds the mutex ms at a time; returns once it does. */
static PyObject *start(PyObject *self, PyObject *args)
{
    pthread_t t;
    if (!PyArg_ParseTuple(args, "l", &hold_ms))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    pthread_create(&t, NULL, worker, NULL);
    while (!__atomic_load_n(&holding, __ATOMIC_ACQUIRE))
        sleep_ms(1);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

/* take(): lock and unlock the mutex (in a forked child). */
static PyObject *take(PyObject *self, PyObject *args)
{
    pthread_mutex_lock(&lockext_mutex);
    pthread_mutex_unlock(&lockext_mutex);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"start", start, METH_VARARGS, "start the worker"},
    {"take", take, METH_NOARGS, "take the mutex"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "fsafe_lockext", NULL, -1, methods};

PyMODINIT_FUNC PyInit_fsafe_lockext(void)
{
    return PyModule_Create(&module);
}
