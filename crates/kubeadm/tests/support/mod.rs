//! Helpers of the etcd snapshot and certificate renewal tests: the shared peer lookup and root
//! pictures of `kubeadm_testapi::support` (one implementation for every test).

pub use kubeadm_testapi::support::{peer, tree};
