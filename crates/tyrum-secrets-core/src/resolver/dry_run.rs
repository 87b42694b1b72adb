//! A dry run of the policy: what a resolve would decide, without resolving.

use super::{ResolveError, ResolveRequest, Resolver};
use crate::policy::{Decision, PolicyInput};
use crate::{HandleId, Timestamp};

impl Resolver {
    /// The policy's decision (effect and the rule that made it) for
    /// resolving `id` with `request`, as [`resolve`](Self::resolve) would
    /// take it, without resolving: no value is read, nothing is registered
    /// with the redactor, and no audit record is written (a dry run hands
    /// nothing out). Approval grants in `request` are not checked or
    /// consumed: a [`RequireApproval`](crate::Effect::RequireApproval)
    /// decision says one would be needed.
    ///
    /// # Errors
    /// As the catalog step of a resolve: [`ResolveError::UnknownHandle`],
    /// [`ResolveError::Revoked`], [`ResolveError::Expired`], or a catalog
    /// failure.
    pub fn check_policy(
        &self,
        id: &HandleId,
        request: &ResolveRequest,
    ) -> Result<Decision, ResolveError> {
        let entry = self
            .catalog
            .lookup_at(id, Timestamp::now())
            .map_err(|e| ResolveError::from_lookup(id, e))?;
        Ok(self.policy.decide(
            &PolicyInput::new(
                &entry.handle,
                request.requester(),
                request.purpose(),
                request.destination(),
            )
            .with_labels(&entry.labels),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::{
        AdminRequest, Catalog, Effect, KindSpec, MemoryAuditSink, MemoryCatalogStore,
        MemoryProvider, NewSecret, ProviderId, Purpose, Redactor, Requester, ResolveError,
        ResolveRequest, Resolver, RulePolicy, Scope, SecretAdmin, SecretBytes,
    };

    #[test]
    fn check_policy_decides_without_reading_registering_or_auditing() {
        let memory = ProviderId::new("memory").unwrap();
        let catalog = Arc::new(
            Catalog::new(MemoryCatalogStore::new())
                .with_provider(memory.clone(), MemoryProvider::new()),
        );
        let admin_audit = Arc::new(MemoryAuditSink::new());
        let admin = SecretAdmin::builder(catalog.clone(), admin_audit, &crate::Redactor::new())
            .build()
            .unwrap();
        let by = AdminRequest::new(
            Requester::new("operator").unwrap(),
            Purpose::new("test").unwrap(),
        );
        let handle = admin
            .create(
                NewSecret::new(memory, Scope::new("ci").unwrap(), KindSpec::api_key()),
                &SecretBytes::from(b"sk-dry-run-canary-value".to_vec()),
                &by,
            )
            .unwrap();
        let policy = RulePolicy::from_json_str(
            r#"{"rules": [{"id": "ci", "effect": "allow", "secret": "memory:ci", "agent": "ci-bot"}]}"#,
        )
        .unwrap();
        let audit = Arc::new(MemoryAuditSink::new());
        let redactor = Redactor::new();
        let resolver = Resolver::builder(catalog, policy, audit.clone())
            .redactor(redactor.clone())
            .build()
            .unwrap();
        let ask = |agent: &str| {
            ResolveRequest::new(Requester::new(agent).unwrap(), Purpose::new("dry").unwrap())
        };

        let allowed = resolver.check_policy(handle.id(), &ask("ci-bot")).unwrap();
        assert_eq!(
            (allowed.effect, allowed.rule.as_deref()),
            (Effect::Allow, Some("ci"))
        );
        let denied = resolver.check_policy(handle.id(), &ask("intern")).unwrap();
        assert_eq!((denied.effect, denied.rule), (Effect::Deny, None));
        assert_eq!(audit.len(), 0);
        assert_eq!(redactor.value_count(), 0);

        admin.revoke(handle.id(), &by).unwrap();
        assert!(matches!(
            resolver.check_policy(handle.id(), &ask("ci-bot")),
            Err(ResolveError::Revoked { .. })
        ));
        assert_eq!(audit.len(), 0);
    }
}
