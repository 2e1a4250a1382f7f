//! Photos a front-end sent by address, fetched before a delivery to a back-end that takes
//! files, so a back-end that cannot reach the front-end still gets them. A photo that cannot
//! be fetched (a host not allowed, a private address, not an image, too large, unreachable)
//! is logged and left: its address still goes on with the case.

use std::collections::BTreeSet;

use junction_domain::{Actor, Case, NewAttachment};
use junction_store::{StoreError, attachments};

use crate::runner::Runner;

/// Fetches and keeps each of `case`'s photo addresses not yet kept, as parts `media1..N`.
pub(crate) async fn fetch_missing(runner: &Runner, case: &Case) -> Result<(), StoreError> {
    let Some(fetcher) = &runner.media else {
        return Ok(());
    };
    if case.media_urls.is_empty() {
        return Ok(());
    }
    let kept: BTreeSet<String> = attachments::of_case(&runner.store, &case.id)
        .await?
        .into_iter()
        .map(|a| a.part)
        .collect();
    for (i, url) in case.media_urls.iter().enumerate() {
        let part = format!("media{}", i + 1);
        if kept.contains(&part) {
            continue;
        }
        match fetcher.fetch(url).await {
            Ok(photo) => {
                let extension = photo.content_type.trim_start_matches("image/");
                let file = NewAttachment {
                    file_name: format!("{}.{}.{extension}", case.reference, i + 1),
                    part,
                    content_type: photo.content_type.to_string(),
                    data: photo.data,
                };
                attachments::keep_fetched(
                    &runner.store,
                    &Actor::internal("media"),
                    &case.id,
                    file,
                    url,
                )
                .await?;
            }
            Err(why) => tracing::warn!(
                case = case.reference,
                url,
                why,
                "a photo was not fetched; its address goes on with the case"
            ),
        }
    }
    Ok(())
}
