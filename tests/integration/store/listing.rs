//! Listing cases on every database: pages, filters and orders.

use junction_domain::{Actor, CaseStatus, RoutingTable};
use junction_store::Store;
use junction_store::cases::{self, CaseFilter};
use junction_store::catalogue;

use super::*;
use crate::support::{all_databases, init};

#[tokio::test]
async fn listing_pages_and_filters() {
    each_db!(|store| {
        catalogue::apply(&store, &Actor::internal("config"), &catalogue())
            .await
            .unwrap();
        let mut ids = Vec::new();
        for depth in 0..7 {
            ids.push(
                intake(
                    &store,
                    &actor(),
                    "bor",
                    pothole(depth),
                    &RoutingTable::default(),
                )
                .await
                .unwrap()
                .id,
            );
        }
        cases::change_status(&store, &actor(), &ids[2], CaseStatus::Fixed, None)
            .await
            .unwrap();
        let first = cases::list(&store, &CaseFilter::default(), 3, None)
            .await
            .unwrap();
        assert!(first.has_next);
        assert_eq!(first.total, 7);
        let newest: Vec<&str> = first.cases.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(newest, [ids[6].as_str(), ids[5].as_str(), ids[4].as_str()]);
        let mut seen = newest.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut after = first.cases.last().map(|c| c.id.clone());
        loop {
            let page = cases::list(&store, &CaseFilter::default(), 3, after.as_deref())
                .await
                .unwrap();
            seen.extend(page.cases.iter().map(|c| c.id.clone()));
            if !page.has_next {
                break;
            }
            after = page.cases.last().map(|c| c.id.clone());
        }
        seen.reverse();
        assert_eq!(seen, ids, "every case exactly once, in order");
        let fixed = CaseFilter {
            statuses: vec![CaseStatus::Fixed],
            ..Default::default()
        };
        let page = cases::list(&store, &fixed, 10, None).await.unwrap();
        assert_eq!(
            (page.total, page.cases[0].id.as_str()),
            (1, ids[2].as_str())
        );
        let by_type = CaseFilter {
            case_types: vec!["POT".into()],
            agency: Some("highways".into()),
            ..Default::default()
        };
        assert_eq!(
            cases::list(&store, &by_type, 10, None).await.unwrap().total,
            7
        );
        let other = CaseFilter {
            agency: Some("env".into()),
            ..Default::default()
        };
        assert_eq!(
            cases::list(&store, &other, 10, None).await.unwrap().total,
            0
        );
        let future = CaseFilter {
            created_from: Some(chrono::Utc::now() + chrono::Duration::hours(1)),
            ..Default::default()
        };
        assert_eq!(
            cases::list(&store, &future, 10, None).await.unwrap().total,
            0
        );
    });
}
