//! What the public store types forward to the store they wrap.

/// Stamps what a public store type (a newtype over
/// [`SqlStore`](crate::store::SqlStore) on sqlx database `$db`) forwards to
/// it: `Debug`, [`IdempotencyStore`](idem_core::IdempotencyStore),
/// [`PurgeExpired`](idem_core::PurgeExpired) and the transactional mode.
macro_rules! forward_to_sql_store {
    ($store:ident, $db:ty) => {
        impl $store {
            /// The transactional mode over this store's pool and table: the
            /// claim, the handler's own writes and the stored response
            /// commit in one transaction (see [`Transactional`](crate::Transactional)).
            pub fn transactional(&self) -> $crate::Transactional<$db> {
                $crate::Transactional::new(::std::sync::Arc::new(self.0.clone()))
            }
        }

        impl ::std::fmt::Debug for $store {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct(stringify!($store))
                    .field("config", self.0.config())
                    .field("connections", &self.0.pool().size())
                    .finish()
            }
        }

        #[::idem_core::async_trait]
        impl ::idem_core::IdempotencyStore for $store {
            async fn find(
                &self,
                key: &::idem_core::StoreKey,
            ) -> ::idem_core::Result<Option<::bytes::Bytes>> {
                self.0.find(key).await
            }

            async fn store(
                &self,
                key: &::idem_core::StoreKey,
                value: ::bytes::Bytes,
                ttl: ::std::time::Duration,
            ) -> ::idem_core::Result<()> {
                self.0.store(key, value, ttl).await
            }

            async fn remove(&self, key: &::idem_core::StoreKey) -> ::idem_core::Result<bool> {
                self.0.remove(key).await
            }

            async fn exists(&self, key: &::idem_core::StoreKey) -> ::idem_core::Result<bool> {
                self.0.exists(key).await
            }

            async fn claim(
                &self,
                key: &::idem_core::StoreKey,
                pending: ::bytes::Bytes,
                lease: ::std::time::Duration,
            ) -> ::idem_core::Result<::idem_core::Claim> {
                self.0.claim(key, pending, lease).await
            }

            async fn extend(
                &self,
                key: &::idem_core::StoreKey,
                token: &::idem_core::LeaseToken,
                lease: ::std::time::Duration,
            ) -> ::idem_core::Result<()> {
                self.0.extend(key, token, lease).await
            }

            async fn complete(
                &self,
                key: &::idem_core::StoreKey,
                token: &::idem_core::LeaseToken,
                value: ::bytes::Bytes,
                ttl: ::std::time::Duration,
            ) -> ::idem_core::Result<()> {
                self.0.complete(key, token, value, ttl).await
            }

            async fn release(
                &self,
                key: &::idem_core::StoreKey,
                token: &::idem_core::LeaseToken,
            ) -> ::idem_core::Result<bool> {
                self.0.release(key, token).await
            }

            async fn stats(
                &self,
                space: &::idem_core::KeySpace,
            ) -> ::idem_core::Result<::idem_core::StoreStats> {
                self.0.stats(space).await
            }

            fn backend(&self) -> &'static str {
                $crate::forward::backend_of(&self.0)
            }
        }

        #[::idem_core::async_trait]
        impl ::idem_core::PurgeExpired for $store {
            async fn purge_expired(&self) -> ::idem_core::Result<u64> {
                self.0.purge_expired().await
            }
        }
    };
}

pub(crate) use forward_to_sql_store;

/// The backend name of a store on dialect `D`.
pub(crate) fn backend_of<D: crate::dialect::Dialect>(
    _: &crate::store::SqlStore<D>,
) -> &'static str {
    D::BACKEND
}
