//! The API client of one init run (shared by every API phase): under `--dry-run` the printing
//! client of [`crate::dryrun_client`], otherwise a client from admin.conf; plus the helpers the
//! API phases share (reading the PKI through the effects layer, applying RBAC sets).

use std::future::Future;
use std::path::{Path, PathBuf};

use kube::Client;
use kubeadm_api::config::InitConfig;
use kubeadm_cluster::rbac::RbacSet;

use super::InitContext;
use crate::apiclient::{self, ApiError, apply_cluster, apply_ns};
use crate::error::{Error, Result};

const ADMIN_CONF: &str = "/etc/kubernetes/admin.conf";

/// Where a file of the cluster's PKI lives.
pub(crate) fn pki_path(cfg: &InitConfig, file: &str) -> PathBuf {
    Path::new(&cfg.cluster.certificates_dir).join(file)
}

/// Reads a file an earlier phase wrote; a missing one is an error saying which phases to run.
pub(crate) fn read(ctx: &InitContext, path: &Path) -> Result<Vec<u8>> {
    ctx.fx.read(path)?.ok_or_else(|| {
        Error::with_hint(format!("{} does not exist", path.display()), EARLIER_PHASES)
    })
}

/// Reads a file an earlier phase writes. Missing, it is an error with `hint`, except in a dry
/// run of a phase alone (the earlier phase only pretended to write it): then a note saying
/// `then` and `None`, so the phase plans on without it.
pub(crate) fn read_planned(
    ctx: &InitContext,
    path: &Path,
    then: &str,
    hint: &str,
) -> Result<Option<Vec<u8>>> {
    match ctx.fx.read(path)? {
        Some(data) => Ok(Some(data)),
        None if ctx.opts.dry_run => {
            ctx.fx
                .note(&format!("{} does not exist yet: {then}", path.display()));
            Ok(None)
        }
        None => Err(Error::with_hint(
            format!("{} does not exist", path.display()),
            hint,
        )),
    }
}

/// What to run when an earlier phase's file is missing.
pub(crate) const EARLIER_PHASES: &str = "run the earlier init phases first (`kubeadm init phase certs all`, `kubeadm init phase kubeconfig all`)";

/// The API client of one init run, made on first use and shared by every API phase. Its
/// runtime lives as long as the client (the client's request buffer runs on it).
pub struct ApiSession {
    rt: tokio::runtime::Runtime,
    client: Client,
}

impl std::fmt::Debug for ApiSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiSession").finish_non_exhaustive()
    }
}

impl ApiSession {
    /// The printing client of [`crate::dryrun_client`]: every request is shown, none leaves.
    pub fn dry_run() -> Result<Self> {
        let rt = apiclient::runtime()?;
        let client = {
            let _guard = rt.enter();
            crate::dryrun_client::client(crate::dryrun_client::stdout())
        };
        Ok(ApiSession { rt, client })
    }

    /// A client from a kubeconfig's text (`name` says which file, for errors).
    pub fn from_kubeconfig(name: &str, text: &str) -> Result<Self> {
        let rt = apiclient::runtime()?;
        let client = rt.block_on(apiclient::client_from_kubeconfig(name, text))?;
        Ok(ApiSession { rt, client })
    }

    /// Runs `f` with the client on the session's runtime.
    pub fn run<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: FnOnce(Client) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        self.rt.block_on(f(self.client.clone()))
    }
}

/// Makes the session: under `--dry-run` the printing client; otherwise a client from
/// admin.conf, after making sure (from 1.29, with super-admin.conf) that admin.conf's group is
/// bound to cluster-admin, as upstream does when it first needs a client.
fn open_session(ctx: &InitContext) -> Result<ApiSession> {
    let cfg = ctx.cfg.clone();
    let (session, super_admin) = if ctx.opts.dry_run {
        (ApiSession::dry_run()?, None)
    } else {
        let kc = read(ctx, Path::new(ADMIN_CONF))?;
        let text =
            String::from_utf8(kc).map_err(|_| Error::msg(format!("{ADMIN_CONF} is not UTF-8")))?;
        let super_admin = if ctx.cfg.info().has_super_admin() {
            ctx.fx.read_to_string(Path::new(SUPER_ADMIN_CONF))?
        } else {
            None
        };
        (ApiSession::from_kubeconfig(ADMIN_CONF, &text)?, super_admin)
    };
    match super_admin {
        Some(sa) => ApiSession::from_kubeconfig(SUPER_ADMIN_CONF, &sa)?
            .run(|c| async move { cluster_admins(&c, &cfg).await })?,
        None => session.run(|c| async move { cluster_admins(&c, &cfg).await })?,
    }
    Ok(session)
}

/// Runs `f` with the run's client (made on first use).
pub(crate) fn with_client<F, Fut>(ctx: &mut InitContext, f: F) -> Result<()>
where
    F: FnOnce(Client, InitConfig) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    if ctx.api.is_none() {
        ctx.api = Some(open_session(ctx)?);
    }
    let cfg = ctx.cfg.clone();
    let Some(session) = ctx.api.as_ref() else {
        return Err(Error::msg("no API client"));
    };
    session.run(|c| f(c, cfg))
}

const SUPER_ADMIN_CONF: &str = "/etc/kubernetes/super-admin.conf";

/// Creates-or-updates every object of an RBAC set.
pub async fn apply_rbac(client: &Client, set: &RbacSet) -> Result<(), ApiError> {
    for r in &set.cluster_roles {
        apply_cluster(client, r).await?;
    }
    for b in &set.cluster_role_bindings {
        apply_cluster(client, b).await?;
    }
    for r in &set.roles {
        apply_ns(client, r).await?;
    }
    for b in &set.role_bindings {
        apply_ns(client, b).await?;
    }
    Ok(())
}

/// The kubeadm:cluster-admins ClusterRoleBinding (1.29 and later).
pub async fn cluster_admins(client: &Client, cfg: &InitConfig) -> Result<()> {
    if let Some(b) = kubeadm_cluster::rbac::cluster_admins(cfg.info()) {
        apply_cluster(client, &b).await?;
    }
    Ok(())
}
