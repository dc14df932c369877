/* SPDX-License-Identifier: MIT */
/* A plugin with nothing in it but a symbol: loaded by bare name through
 * rp_loader's RUNPATH, and by path in the dlopen family test. */
__attribute__((visibility("default"))) int fsafe_rp_plugin_value = 42;
