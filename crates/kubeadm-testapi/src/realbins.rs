//! Opt-in real control-plane binaries for tests (KUBEADM_TEST_BIN_DIR).
