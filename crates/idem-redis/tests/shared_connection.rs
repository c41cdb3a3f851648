//! A store on the application's own Redis connection (a `ConnectionManager`)
//! passes the whole conformance suite, and the application's commands share
//! that connection.

use std::sync::Arc;

use idem_conformance::{Subject, cases};
use idem_redis::{RedisConfig, RedisStore};
use idem_tests::redis_servers::RedisProcess;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_on_an_application_connection_manager_conforms() {
    let server = match RedisProcess::start() {
        Ok(server) => server,
        Err(reason) => return idem_conformance::skip("redis", &reason).unwrap_or(()),
    };
    let client = redis::Client::open(server.url()).unwrap();
    let mut manager = client.get_connection_manager().await.unwrap();
    let config = RedisConfig::from_url(&server.url()).unwrap();
    let store = RedisStore::from_connection_manager(manager.clone(), config);
    store.ping().await.unwrap();

    let subject = Subject::new("redis-shared-connection", Arc::new(store.clone()));
    for case in cases::ALL {
        eprintln!("case {}", case.name());
        case.run(&subject).await;
    }

    // One connection: the application's and the store's commands on it.
    let _: () = redis::cmd("SET")
        .arg("app:own")
        .arg("1")
        .query_async(&mut manager)
        .await
        .unwrap();
    let clients: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut manager)
        .await
        .unwrap();
    assert_eq!(
        clients.lines().count(),
        1,
        "the store opened connections of its own:\n{clients}"
    );
}
