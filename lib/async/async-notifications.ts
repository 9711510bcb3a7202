import * as events from 'aws-cdk-lib/aws-events';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { ENV } from '../../contract/environment';

/** What a notification choice gives the function: its environment, once its grants are made. */
export interface AsyncNotificationsConfig {
  /** Environment variables of the inference function (ASYNC_EVENT_BUS, ASYNC_*_TOPIC_ARN). */
  readonly environment: Record<string, string>;
}

/** SNS topics for asynchronous inference's notifications, as SageMaker Asynchronous Inference has them. */
export interface AsyncSnsTopics {
  /**
   * The topic a success is published to.
   * @default - no notification of a success
   */
  readonly success?: sns.ITopic;
  /**
   * The topic a failure is published to.
   * @default - no notification of a failure
   */
  readonly failure?: sns.ITopic;
}

/**
 * Where success and failure notifications of asynchronous requests go: an EventBridge event bus
 * (the default: the account's default bus, `source` `cdk-serverless-inference`, `detail-type`
 * `Inference Succeeded` or `Inference Failed`), SNS topics, or nowhere (callers poll the status).
 */
export abstract class AsyncNotifications {
  /**
   * Events on an EventBridge bus: rules filter them by model, status or anything in the detail.
   * @param eventBus the bus; the account's default bus when left out
   */
  public static eventBridge(eventBus?: events.IEventBus): AsyncNotifications {
    return new EventBridgeNotifications(eventBus);
  }

  /** Messages on SNS topics, one for successes and one for failures, with `status` and `model_name` as message attributes. */
  public static snsTopics(topics: AsyncSnsTopics): AsyncNotifications {
    return new SnsNotifications(topics);
  }

  /** No notification: callers poll `GET /v2/models/{model}/infer-async/{id}`. */
  public static none(): AsyncNotifications {
    return new NoNotifications();
  }

  /** Grants `function` what it needs to notify, and says where. */
  public abstract bind(scope: Construct, grantee: iam.IGrantable): AsyncNotificationsConfig;
}

class EventBridgeNotifications extends AsyncNotifications {
  constructor(private readonly eventBus?: events.IEventBus) {
    super();
  }

  public bind(scope: Construct, grantee: iam.IGrantable): AsyncNotificationsConfig {
    const bus = this.eventBus ?? events.EventBus.fromEventBusName(scope, 'DefaultEventBus', 'default');
    bus.grantPutEventsTo(grantee);
    return { environment: { [ENV.ASYNC_EVENT_BUS]: bus.eventBusArn } };
  }
}

class SnsNotifications extends AsyncNotifications {
  constructor(private readonly topics: AsyncSnsTopics) {
    super();
  }

  public bind(_scope: Construct, grantee: iam.IGrantable): AsyncNotificationsConfig {
    const environment: Record<string, string> = {};
    if (this.topics.success) {
      this.topics.success.grantPublish(grantee);
      environment[ENV.ASYNC_SUCCESS_TOPIC_ARN] = this.topics.success.topicArn;
    }
    if (this.topics.failure) {
      this.topics.failure.grantPublish(grantee);
      environment[ENV.ASYNC_ERROR_TOPIC_ARN] = this.topics.failure.topicArn;
    }
    return { environment };
  }
}

class NoNotifications extends AsyncNotifications {
  public bind(): AsyncNotificationsConfig {
    return { environment: {} };
  }
}
