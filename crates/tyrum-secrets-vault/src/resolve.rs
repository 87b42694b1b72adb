//! Host name resolution that is not repeated on every request.
//!
//! ureq resolves the host before it looks in its connection pool, and with
//! a timeout set it starts a thread for each lookup (std has no lookup with
//! a deadline). A kept-alive connection would then still cost a thread per
//! request. This resolver keeps the last answer for [`TTL`] and forgets it
//! when a request fails to reach the server, so a moved server is found
//! again at once. Lookups themselves stay bounded by the call's timeout.
//!
//! Uses ureq's `unversioned` resolver interface, which may change in a
//! minor release: the workspace pins ureq to 3.5.x for that reason.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// How long a resolved address is reused.
pub(crate) const TTL: Duration = Duration::from_secs(30);

/// A [`Resolver`] that caches the last answer; clones share the cache.
#[derive(Clone, Debug, Default)]
pub(crate) struct CachingResolver {
    cache: Arc<Mutex<Option<Cached>>>,
}

#[derive(Debug)]
struct Cached {
    authority: String,
    addrs: ResolvedSocketAddrs,
    at: Instant,
}

impl CachingResolver {
    /// Forgets the cached answer (after a failure to connect).
    pub(crate) fn forget(&self) {
        *self.cache.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

impl Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
        {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(cached) = cache.as_ref()
                && cached.authority == authority
                && cached.at.elapsed() < TTL
            {
                return Ok(cached.addrs.clone());
            }
        }
        let addrs = DefaultResolver::default().resolve(uri, config, timeout)?;
        *self.cache.lock().unwrap_or_else(|p| p.into_inner()) = Some(Cached {
            authority: authority.to_owned(),
            addrs: addrs.clone(),
            at: Instant::now(),
        });
        Ok(addrs)
    }
}
