/* SPDX-License-Identifier: MIT */
/*
 * Python C extension fsafe_demo: a native pthread (it never touches the
 * interpreter or the GIL) takes and releases a lock in a loop, holding it most
 * of the time, and fsafe_demo.take() takes the same lock.  The lock is
 * registered with fsafe through the optional API, so one source builds two
 * ways: with FSAFE_OPTIONAL (no -lfsafe) and linked -lfsafe.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h> /* first: it sets the feature macros */

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>

#include <fsafe.h>

#if PY_VERSION_HEX < 0x030a0000 /* Py_NewRef is Python 3.10's */
static PyObject *Py_NewRef(PyObject *o)
{
    Py_INCREF(o);
    return o;
}
#endif

static pthread_mutex_t demo_lock = PTHREAD_MUTEX_INITIALIZER;
static int demo_registration = -1;
static int demo_started;

/* 2 ms held, then taken again at once: a fork from any other thread almost
 * always finds the lock held, which is what a busy native library looks like.
 * The worker spins for the lock rather than sleeping in the kernel: a thread
 * that has just taken and released it (an os.register_at_fork "before"
 * callback does) would otherwise fork while the worker is still being woken,
 * and the child would not show the hang. */
static void *demo_worker(void *arg)
{
    (void)arg;
    struct timespec in = {0, 2000000};
    for (;;) {
        while (pthread_mutex_trylock(&demo_lock) != 0)
            sched_yield();
        nanosleep(&in, NULL);
        pthread_mutex_unlock(&demo_lock);
        sched_yield();
    }
    return NULL;
}

/* start(): starts the native worker once. */
static PyObject *demo_start(PyObject *self, PyObject *noargs)
{
    (void)self, (void)noargs;
    if (!demo_started) {
        pthread_t t;
        int r = pthread_create(&t, NULL, demo_worker, NULL);
        if (r != 0) {
            errno = r;
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        pthread_detach(t);
        demo_started = 1;
    }
    Py_RETURN_NONE;
}

/* take(timeout_ms): True if the lock was taken (and released) within the
 * timeout, False if not: in a child that would be a hang.  Waits without the
 * GIL, as a well-behaved extension does. */
static PyObject *demo_take(PyObject *self, PyObject *arg)
{
    (void)self;
    long ms = PyLong_AsLong(arg);
    if (ms == -1 && PyErr_Occurred())
        return NULL;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    int r;
    Py_BEGIN_ALLOW_THREADS
    r = pthread_mutex_timedlock(&demo_lock, &ts);
    if (r == 0)
        pthread_mutex_unlock(&demo_lock);
    Py_END_ALLOW_THREADS
    return PyBool_FromLong(r == 0);
}

/* registration(): 0, or ENOSYS when fsafe is not in the process. */
static PyObject *demo_registration_get(PyObject *self, PyObject *noargs)
{
    (void)self, (void)noargs;
    return PyLong_FromLong(demo_registration);
}

/* stats(): (forks, forks_via_handler) from fsafe, or None without it. */
static PyObject *demo_stats(PyObject *self, PyObject *noargs)
{
    (void)self, (void)noargs;
    struct fsafe_stats s;
    if (!fsafe_present() || fsafe_get_stats(&s, sizeof s) != 0)
        Py_RETURN_NONE;
    return Py_BuildValue("(KK)", (unsigned long long)s.forks,
                         (unsigned long long)s.forks_via_handler);
}

static PyMethodDef demo_methods[] = {
    {"start", demo_start, METH_NOARGS, "Start the native worker thread."},
    {"take", demo_take, METH_O, "take(timeout_ms) -> bool: take and release the lock."},
    {"registration", demo_registration_get, METH_NOARGS, "fsafe registration result."},
    {"stats", demo_stats, METH_NOARGS, "(forks, forks_via_handler) or None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef demo_module = {
    PyModuleDef_HEAD_INIT, "fsafe_demo", "fsafe demonstration extension", -1, demo_methods,
    NULL, NULL, NULL, NULL,
};

__attribute__((visibility("default"))) PyObject *PyInit_fsafe_demo(void)
{
    /* Registered at import, before the worker can hold the lock. */
    demo_registration = fsafe_opt_register_lock(&demo_lock, FSAFE_MUTEX, 100, "python demo_lock");
    PyObject *m = PyModule_Create(&demo_module);
    if (!m)
        return NULL;
#ifdef FSAFE_OPTIONAL
    PyModule_AddObject(m, "LINKED", Py_NewRef(Py_False));
#else
    PyModule_AddObject(m, "LINKED", Py_NewRef(Py_True));
#endif
    return m;
}
