//! The audit chain on every database: group commit under concurrency, the writer's cached
//! head, time formats, and `verify` finding tampering.

use junction_domain::Actor;
use junction_store::{Store, audit, catalogue};

use crate::support::{all_databases, init};

#[tokio::test]
async fn group_commit_keeps_the_chain_whole_under_concurrency() {
    each_db!(|store| {
        let (writer, task) = audit::AuditWriter::start(store.clone());
        let mut tasks = Vec::new();
        for i in 0..200 {
            let writer = writer.clone();
            tasks.push(tokio::spawn(async move {
                writer
                    .record(Actor::internal(&format!("t{i}")).entry())
                    .await
            }));
        }
        // State changes interleave with operation records on the same chain.
        catalogue::apply(&store, &Actor::internal("config"), &super::catalogue())
            .await
            .unwrap();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        drop(writer);
        task.await.unwrap();
        assert_eq!(audit::count(&store).await.unwrap(), 205);
        let report = audit::verify(&store).await.unwrap();
        assert_eq!((report.checked, report.first_bad), (205, None));
    });
}

#[tokio::test]
async fn the_writer_and_transactions_store_times_alike() {
    each_db!(|store| {
        // Inside a transaction (through the pool) ...
        catalogue::apply(&store, &Actor::internal("config"), &super::catalogue())
            .await
            .unwrap();
        // ... and through the group-commit writer (its own connection on a SQLite file).
        let (writer, task) = audit::AuditWriter::start(store.clone());
        let mut entry = Actor::internal("writer").entry();
        entry.at = "2026-11-21T10:00:00.5Z".parse().unwrap();
        writer.record(entry).await.unwrap();
        drop(writer);
        task.await.unwrap();
        let all = audit::count(&store).await.unwrap();
        if store.backend() == junction_store::Backend::Sqlite {
            // One text format for every row, so range filters compare like with like.
            let alike = store
                .execute_sql(
                    "UPDATE audit_log SET actor = actor WHERE at LIKE '____-__-__T__:__:__%+00:00'",
                )
                .await
                .unwrap();
            assert_eq!(alike, all);
        }
        let filter = audit::AuditFilter {
            from: Some("2026-11-21T10:00:00.5Z".parse().unwrap()),
            to: Some("2026-11-21T10:00:00.6Z".parse().unwrap()),
            ..Default::default()
        };
        let (found, _) = audit::list(&store, &filter, 10, None).await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].entry.actor, "junction:writer");
        let report = audit::verify(&store).await.unwrap();
        assert_eq!((report.checked, report.first_bad), (all, None));
    });
}

#[tokio::test]
async fn verify_names_the_first_tampered_record() {
    each_db!(|store| {
        catalogue::apply(&store, &Actor::internal("config"), &super::catalogue())
            .await
            .unwrap();
        assert_eq!(audit::verify(&store).await.unwrap().first_bad, None);
        store
            .execute_sql("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3")
            .await
            .unwrap();
        let (seq, why) = audit::verify(&store).await.unwrap().first_bad.unwrap();
        assert_eq!(seq, 3);
        assert!(why.contains("does not match its hash"), "{why}");
    });
}

#[tokio::test]
async fn verify_notices_a_truncated_log() {
    each_db!(|store| {
        catalogue::apply(&store, &Actor::internal("config"), &super::catalogue())
            .await
            .unwrap();
        store
            .execute_sql("DELETE FROM audit_log WHERE seq = 5")
            .await
            .unwrap();
        let (_, why) = audit::verify(&store).await.unwrap().first_bad.unwrap();
        assert!(why.contains("chain head says record 5"), "{why}");
    });
}

#[tokio::test]
async fn verify_notices_a_deleted_record() {
    each_db!(|store| {
        catalogue::apply(&store, &Actor::internal("config"), &super::catalogue())
            .await
            .unwrap();
        store
            .execute_sql("DELETE FROM audit_log WHERE seq = 2")
            .await
            .unwrap();
        let (seq, why) = audit::verify(&store).await.unwrap().first_bad.unwrap();
        assert_eq!(seq, 2);
        assert!(why.contains("missing"), "{why}");
    });
}

#[tokio::test]
async fn the_writer_follows_the_head_when_others_append() {
    each_db!(|store| {
        let (writer, task) = audit::AuditWriter::start(store.clone());
        // One at a time: every batch after the first goes on the writer's cached head.
        for i in 0..30 {
            writer
                .record(Actor::internal(&format!("before{i}")).entry())
                .await
                .unwrap();
        }
        // A state change appends behind the writer's back and moves the head.
        catalogue::apply(&store, &Actor::internal("config"), &super::catalogue())
            .await
            .unwrap();
        for i in 0..30 {
            writer
                .record(Actor::internal(&format!("after{i}")).entry())
                .await
                .unwrap();
        }
        drop(writer);
        task.await.unwrap();
        let report = audit::verify(&store).await.unwrap();
        assert_eq!((report.checked, report.first_bad), (65, None));
        let (newest, _) = audit::list(&store, &audit::AuditFilter::default(), 1, None)
            .await
            .unwrap();
        assert_eq!(
            (newest[0].link.seq, newest[0].entry.actor.as_str()),
            (65, "junction:after29")
        );
    });
}

/// Many callers at once, with state changes appending behind the writer's back meanwhile: on
/// PostgreSQL the writer's batches go on its cached head until a change moves the head under
/// it, and then the locked way. Nothing is lost, nothing forks.
#[tokio::test]
async fn concurrent_records_and_changes_make_one_unbroken_chain() {
    each_db!(|store| {
        let (writer, task) = audit::AuditWriter::start(store.clone());
        let mut callers = tokio::task::JoinSet::new();
        for c in 0..16 {
            let writer = writer.clone();
            callers.spawn(async move {
                for i in 0..40 {
                    writer
                        .record(Actor::internal(&format!("caller{c}-{i}")).entry())
                        .await
                        .unwrap();
                }
            });
        }
        let mut changes = 0;
        for round in 0..5 {
            let txn = store.begin_write().await.unwrap();
            audit::append(&*txn, &[Actor::internal(&format!("change{round}")).entry()])
                .await
                .unwrap();
            txn.commit().await.unwrap();
            changes += 1;
            tokio::task::yield_now().await;
        }
        while let Some(done) = callers.join_next().await {
            done.unwrap();
        }
        drop(writer);
        task.await.unwrap();
        let report = audit::verify(&store).await.unwrap();
        assert_eq!(
            (report.checked, report.first_bad),
            (16 * 40 + changes, None)
        );
    });
}

#[tokio::test]
async fn verify_notices_edits_to_the_columns_searches_use() {
    // `disclosures` and the audit filters search on kind, object_type and object_id: an edit
    // there would hide a record from a subject access request, so verify checks them against
    // the hashed content.
    for edit in [
        "UPDATE audit_log SET kind = 'operation' WHERE seq = 3",
        "UPDATE audit_log SET object_type = 'note' WHERE seq = 3",
        "UPDATE audit_log SET object_id = 'someone-else' WHERE seq = 3",
        "UPDATE audit_log SET object_id = NULL WHERE seq = 3",
    ] {
        each_db!(|store| {
            catalogue::apply(&store, &Actor::internal("config"), &super::catalogue())
                .await
                .unwrap();
            assert_eq!(audit::verify(&store).await.unwrap().first_bad, None);
            store.execute_sql(edit).await.unwrap();
            let (seq, why) = audit::verify(&store).await.unwrap().first_bad.unwrap();
            assert_eq!(seq, 3, "{edit}");
            assert!(why.contains("search columns"), "{edit}: {why}");
        });
    }
}

#[tokio::test]
async fn a_cut_at_the_end_is_found_against_a_checkpoint() {
    use junction_domain::checkpoint::CheckpointKey;
    each_db!(|store| {
        catalogue::apply(&store, &Actor::internal("config"), &super::catalogue())
            .await
            .unwrap();
        let key = CheckpointKey::from_secret(b"a-secret-of-at-least-thirty-two-bytes");
        let (seq, hash) = audit::head(&store).await.unwrap();
        assert!(seq >= 5);
        let checkpoint = key.sign(seq, &hash, chrono::Utc::now());
        let report = audit::verify_against(&store, &checkpoint, &key)
            .await
            .unwrap();
        assert_eq!(report.first_bad, None);

        // Deleting the head row alone is noticed without a checkpoint.
        store
            .execute_sql("DELETE FROM audit_head WHERE id = 1")
            .await
            .unwrap();
        let (_, why) = audit::verify(&store).await.unwrap().first_bad.unwrap();
        assert!(why.contains("head row is missing"), "{why}");

        // The last two records cut off and the head moved back to match: the chain alone
        // still verifies, the checkpoint does not.
        let (cut_seq, cut_hash): (i64, String) = {
            let (records, _) = audit::list(&store, &Default::default(), 3, None)
                .await
                .unwrap();
            (records[2].link.seq, records[2].link.hash.clone())
        };
        store
            .execute_sql(&format!("DELETE FROM audit_log WHERE seq > {cut_seq}"))
            .await
            .unwrap();
        store
            .execute_sql(&format!(
                "INSERT INTO audit_head (id, seq, hash, feed_seq) VALUES (1, {cut_seq}, '{cut_hash}', 0)"
            ))
            .await
            .unwrap();
        assert_eq!(audit::verify(&store).await.unwrap().first_bad, None);
        let (at, why) = audit::verify_against(&store, &checkpoint, &key)
            .await
            .unwrap()
            .first_bad
            .unwrap();
        assert_eq!(at, seq);
        assert!(why.contains("the log was cut"), "{why}");

        // A checkpoint altered to vouch for less is refused, not believed.
        let mut altered = checkpoint.clone();
        altered.seq = cut_seq;
        altered.hash = cut_hash.clone();
        let (_, why) = audit::verify_against(&store, &altered, &key)
            .await
            .unwrap()
            .first_bad
            .unwrap();
        assert!(why.contains("signature"), "{why}");
    });
}
