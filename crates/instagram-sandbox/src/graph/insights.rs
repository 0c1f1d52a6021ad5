use super::{Ctx, GraphResult};
use crate::errors::GraphError;
pub fn user_insights(_ctx: &Ctx<'_>) -> GraphResult {
    Err(GraphError::param("todo"))
}
pub fn media_insights(_ctx: &Ctx<'_>, _id: &str) -> GraphResult {
    Err(GraphError::param("todo"))
}
